import Foundation
import Glibc
import XCTest
@testable import MLCredClient

/// A one-thread HTTP server on a Unix socket that answers `{}` to every request, counts the
/// connections it accepted, and can close a connection after its first answer (as the daemon
/// closes an idle one) or answer with `Connection: close`.
private final class CountingServer: @unchecked Sendable {
    let path: String
    private let listener: Int32
    private let lock = NSLock()
    private var accepted = 0
    private var requests = 0
    let closeAfterFirstAnswer: Bool
    let sayClose: Bool

    init(closeAfterFirstAnswer: Bool = false, sayClose: Bool = false) throws {
        path = NSTemporaryDirectory() + "mlcred-client-\(UUID().uuidString.prefix(8)).sock"
        self.closeAfterFirstAnswer = closeAfterFirstAnswer
        self.sayClose = sayClose
        listener = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        withUnsafeMutableBytes(of: &address.sun_path) { raw in
            for (index, byte) in path.utf8.enumerated() { raw[index] = byte }
        }
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(listener, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        }
        guard bound == 0, listen(listener, 8) == 0 else { throw POSIXError(.EADDRINUSE) }
        Thread.detachNewThread { self.serve() }
    }

    var counts: (connections: Int, requests: Int) {
        lock.lock()
        defer { lock.unlock() }
        return (accepted, requests)
    }

    private func serve() {
        while true {
            let client = accept(listener, nil, nil)
            guard client >= 0 else { return }
            lock.lock(); accepted += 1; lock.unlock()
            var pending: [UInt8] = []
            var chunk = [UInt8](repeating: 0, count: 4096)
            while true {
                let count = recv(client, &chunk, chunk.count, 0)
                guard count > 0 else { break }
                pending += chunk.prefix(count)
                guard let end = pending.indices.dropLast(3).first(where: {
                    pending[$0] == 13 && pending[$0 + 1] == 10 && pending[$0 + 2] == 13 && pending[$0 + 3] == 10
                }) else { continue }
                let head = String(decoding: pending[..<end], as: UTF8.self).lowercased()
                let length = head.split(separator: "\r\n").first { $0.hasPrefix("content-length:") }
                    .flatMap { Int($0.dropFirst("content-length:".count).trimmingCharacters(in: .whitespaces)) } ?? 0
                guard pending.count >= end + 4 + length else { continue }
                pending.removeFirst(end + 4 + length)
                lock.lock(); requests += 1; lock.unlock()
                let answer = "HTTP/1.1 200 OK\r\ncontent-length: 3\r\nconnection: \(sayClose ? "close" : "keep-alive")\r\n\r\n{}\n"
                _ = answer.utf8CString.withUnsafeBufferPointer { send(client, $0.baseAddress, answer.utf8.count, Int32(MSG_NOSIGNAL)) }
                if closeAfterFirstAnswer || sayClose { break }
            }
            close(client)
        }
    }

    deinit {
        shutdown(listener, Int32(SHUT_RDWR))
        close(listener)
        unlink(path)
    }
}

final class KeepAliveTests: XCTestCase {
    func testOneClientSendsAllItsCallsOnOneConnection() throws {
        let server = try CountingServer()
        let client = try MLCredClient(socketPath: server.path)
        for _ in 0..<5 { _ = try client.callRaw("POST", "/v1/tokens/renew", body: ["ttl": "1h"]) }
        XCTAssertEqual(server.counts.requests, 5)
        XCTAssertEqual(server.counts.connections, 1)
    }

    func testAConnectionTheDaemonClosedWhileIdleIsReplacedAndTheRequestSentOnce() throws {
        let server = try CountingServer(closeAfterFirstAnswer: true)
        let client = try MLCredClient(socketPath: server.path)
        _ = try client.callRaw("GET", "/v1/status")
        usleep(50_000)  // the server has closed its end by now
        _ = try client.callRaw("POST", "/v1/tokens/revoke")
        XCTAssertEqual(server.counts.requests, 2, "the retried request reached the server exactly once")
        XCTAssertEqual(server.counts.connections, 2)
    }

    func testAnAnswerWithConnectionCloseIsNotReused() throws {
        let server = try CountingServer(sayClose: true)
        let client = try MLCredClient(socketPath: server.path)
        _ = try client.callRaw("GET", "/v1/status")
        _ = try client.callRaw("GET", "/v1/status")
        XCTAssertEqual(server.counts.connections, 2)
        XCTAssertEqual(server.counts.requests, 2)
    }
}
