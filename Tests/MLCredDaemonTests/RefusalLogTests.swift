import Logging
@testable import MLCredDaemon
import Synchronization
import XCTest

/// Keeps what is logged, for checks.
final class CapturedLog: Sendable {
    let lines = Mutex<[String]>([])

    func logger() -> Logger {
        Logger(label: "test") { _ in Handler(log: self) }
    }

    struct Handler: LogHandler {
        let log: CapturedLog
        var metadata: Logger.Metadata = [:]
        var logLevel: Logger.Level = .trace
        subscript(metadataKey key: String) -> Logger.Metadata.Value? {
            get { metadata[key] }
            set { metadata[key] = newValue }
        }
        func log(event: LogEvent) {
            let uid = event.metadata?["uid"].map { " uid=\($0)" } ?? ""
            log.lines.withLock { $0.append("\(event.message)\(uid)") }
        }
    }
}

final class RefusalLogTests: XCTestCase {
    func testRefusalsAreLoggedOncePerUIDPerWindowThenCounted() {
        let captured = CapturedLog()
        let log = RefusalLog(logger: captured.logger())
        for second in stride(from: 0.0, to: 5, by: 0.001) { log.refused(uid: 1002, "connection limit reached", now: 1000 + second) }
        log.refused(uid: 1001, "connection limit reached", now: 1001)
        XCTAssertEqual(captured.lines.withLock { $0 }, ["connection limit reached uid=1002", "connection limit reached uid=1001"])
        // The next window says how many the last one left out, then opens its own.
        log.refused(uid: 1002, "connection limit reached", now: 1010.5)
        XCTAssertEqual(captured.lines.withLock { Array($0.suffix(2)) },
                       ["4999 more refused connections in the last window uid=1002", "connection limit reached uid=1002"])
    }

    func testManyUIDsKeepABoundedNumberOfWindows() {
        let captured = CapturedLog()
        let log = RefusalLog(logger: captured.logger())
        for uid in 0..<UInt32(RefusalLog.maximumWindows * 3) { log.refused(uid: uid, "connection limit reached", now: 1000 + Double(uid) * 1e-6) }
        XCTAssertEqual(captured.lines.withLock { $0.count }, RefusalLog.maximumWindows * 3, "each uid's first refusal is said")
        XCTAssertLessThanOrEqual(log.windowCount, RefusalLog.maximumWindows)
    }
}
