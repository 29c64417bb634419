import MLCredAPI
@testable import MLCredProviders
import Synchronization
import XCTest

/// The gate in front of PostgreSQL broker connections: never more than its limit at once, the
/// rest served in turn, and a bounded wait that ends in a clear error.
final class ConnectionGateTests: XCTestCase {
    final class Running: Sendable {
        let state = Mutex((now: 0, most: 0))
    }

    func testNeverMoreThanTheLimitAtOnceAndEveryoneGetsATurn() async throws {
        let gate = ConnectionGate(limit: 3, waitSeconds: 10)
        let running = Running()
        try await withThrowingTaskGroup(of: Void.self) { group in
            for _ in 0..<20 {
                group.addTask {
                    try await gate.withPlace("broker@db:5432", what: "db") {
                        running.state.withLock { $0.now += 1; $0.most = max($0.most, $0.now) }
                        try await Task.sleep(nanoseconds: 20_000_000)
                        running.state.withLock { $0.now -= 1 }
                    }
                }
            }
            try await group.waitForAll()
        }
        XCTAssertEqual(running.state.withLock { $0.most }, 3)
        XCTAssertTrue(gate.usage("broker@db:5432") == (0, 0), "every place is given back")
    }

    func testOtherServersDoNotWaitAndAWaitThatRunsOutFailsClearly() async throws {
        let gate = ConnectionGate(limit: 1, waitSeconds: 0.3)
        let holding = Task { try await gate.withPlace("a", what: "A") { try await Task.sleep(nanoseconds: 2_000_000_000) } }
        while gate.usage("a").active == 0 { try await Task.sleep(nanoseconds: 5_000_000) }
        // Another server has places of its own.
        try await gate.withPlace("b", what: "B") {}
        do {
            try await gate.withPlace("a", what: "PostgreSQL at a") {}
            XCTFail("the wait should have run out")
        } catch let error as APIError {
            XCTAssertEqual(error.reason, .upstreamBusy)
            XCTAssertTrue(error.message.contains("PostgreSQL at a: 1 broker connections stayed busy for 0 s"), error.message)
        }
        XCTAssertEqual(gate.usage("a").waiting, 0, "a waiter that gave up leaves the line")
        holding.cancel()
        _ = try? await holding.value
        XCTAssertTrue(gate.usage("a") == (0, 0))
    }
}
