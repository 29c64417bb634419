import Foundation
import Glibc
import MLCredAPI

/// Token issue + jwt fetch from `clients` keep-alive connections driven by `threads` threads,
/// each waiting with poll(2) on its share of them, as pgbench (`-c 32 -j 2`) and wrk drive
/// many connections: one outstanding operation per connection, so `clients` is the
/// concurrency the daemon sees, without one blocked thread (and one wake-up) per client.
enum MultiplexedLoad {
    /// One connection's operation in progress.
    final class Connection {
        let fd: Int32
        var buffer: [UInt8] = []
        var fetching = false
        var started = 0.0

        init(path: String) throws {
            fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
            var address = unixAddress(path)
            let result = withUnsafePointer(to: &address) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
            }
            guard fd >= 0, result == 0 else { throw BenchError(message: "connect \(path): \(String(cString: strerror(errno)))") }
            buffer.reserveCapacity(4096)
        }

        deinit { close(fd) }

        func send(_ bytes: [UInt8]) throws {
            var offset = 0
            while offset < bytes.count {
                let written = bytes.withUnsafeBytes { Glibc.send(fd, $0.baseAddress! + offset, bytes.count - offset, Int32(MSG_NOSIGNAL)) }
                guard written > 0 else { throw BenchError(message: "send: \(String(cString: strerror(errno)))") }
                offset += written
            }
        }

        /// Reads what is there; the answer `(status, body)` once it is whole, else nil.
        func receive(into chunk: inout [UInt8]) throws -> (status: Int, body: ArraySlice<UInt8>)? {
            let count = chunk.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            guard count > 0 else { throw BenchError(message: count == 0 ? "the daemon closed the connection" : "recv: \(String(cString: strerror(errno)))") }
            buffer.append(contentsOf: chunk[..<count])
            guard let end = Self.headEnd(buffer) else { return nil }
            let length = Self.contentLength(buffer[..<end])
            guard buffer.count >= end + 4 + length else { return nil }
            let status = buffer.count > 12 ? Int(buffer[9] - 48) * 100 + Int(buffer[10] - 48) * 10 + Int(buffer[11] - 48) : 0
            return (status, buffer[(end + 4)..<(end + 4 + length)])
        }

        static func headEnd(_ bytes: [UInt8]) -> Int? {
            var index = 0
            while index + 3 < bytes.count {
                if bytes[index] == 13, bytes[index + 1] == 10, bytes[index + 2] == 13, bytes[index + 3] == 10 { return index }
                index += 1
            }
            return nil
        }

        /// The value of `content-length` (the daemon writes header names in lower case).
        static func contentLength(_ head: ArraySlice<UInt8>) -> Int {
            let name = Array("\r\ncontent-length: ".utf8)
            var index = head.startIndex
            while index + name.count <= head.endIndex {
                if head[index..<(index + name.count)].elementsEqual(name) {
                    var value = 0
                    var digit = index + name.count
                    while digit < head.endIndex, head[digit] >= 48, head[digit] <= 57 {
                        value = value * 10 + Int(head[digit] - 48)
                        digit += 1
                    }
                    return value
                }
                index += 1
            }
            return 0
        }
    }

    static func request(_ method: String, _ path: String, body: [UInt8], bearer: String? = nil) -> [UInt8] {
        var head = "\(method) \(path) HTTP/1.1\r\nHost: mlcred\r\n"
        if let bearer { head += "Authorization: Bearer \(bearer)\r\n" }
        head += "Content-Type: application/json\r\nContent-Length: \(body.count)\r\n\r\n"
        return Array(head.utf8) + body
    }

    static func run(socket path: String, role: String, clients: Int, threads: Int, seconds: Double) -> LoadResult {
        let collector = Collector(threads)
        let issue = request("POST", "/v1/tokens", body: JSONWriter.encode(TokenRequest(role: role, ttl: nil, bind: nil)))
        let start = now()
        let deadline = start + seconds
        let group = DispatchGroup()
        for thread in 0..<threads {
            let share = clients / threads + (thread < clients % threads ? 1 : 0)
            group.enter()
            Thread.detachNewThread {
                defer { group.leave() }
                var connections: [Connection] = []
                do {
                    for _ in 0..<share { connections.append(try Connection(path: path)) }
                } catch {
                    collector.errors[thread] += 1
                    collector.firstErrors[thread] = "\(error)"
                    return
                }
                var polls = connections.map { pollfd(fd: $0.fd, events: Int16(POLLIN), revents: 0) }
                var chunk = [UInt8](repeating: 0, count: 16384)
                var latencies: [Double] = []
                latencies.reserveCapacity(400_000)
                for connection in connections {
                    connection.started = now()
                    try? connection.send(issue)
                }
                var open = connections.count
                while open > 0 {
                    let ready = poll(&polls, nfds_t(polls.count), 1000)
                    if ready <= 0 { continue }
                    for index in polls.indices where polls[index].revents != 0 && polls[index].fd >= 0 {
                        polls[index].revents = 0
                        let connection = connections[index]
                        do {
                            guard let (status, body) = try connection.receive(into: &chunk) else { continue }
                            guard status == 200 else { throw BenchError(message: "\(connection.fetching ? "credentials" : "token"): HTTP \(status)") }
                            if connection.fetching {
                                latencies.append(now() - connection.started)
                                connection.fetching = false
                                connection.buffer.removeAll(keepingCapacity: true)
                                let time = now()
                                guard time < deadline else {
                                    polls[index].fd = -1
                                    open -= 1
                                    continue
                                }
                                connection.started = time
                                try connection.send(issue)
                            } else {
                                let token = try JSONObjectReader.decode(TokenResponse.self, from: Array(body))
                                connection.fetching = true
                                connection.buffer.removeAll(keepingCapacity: true)
                                try connection.send(request("POST", "/v1/credentials", body: Array("{}".utf8), bearer: token.token))
                            }
                        } catch {
                            collector.errors[thread] += 1
                            if collector.firstErrors[thread] == nil { collector.firstErrors[thread] = "\(error)" }
                            polls[index].fd = -1
                            open -= 1
                        }
                    }
                }
                collector.latencies[thread] = latencies
            }
        }
        group.wait()
        var said = Set<String>()
        for case let message? in collector.firstErrors where said.insert(message).inserted {
            FileHandle.standardError.write(Data("  error: \(message)\n".utf8))
        }
        let all = collector.latencies.flatMap { $0 }
        return LoadResult(operations: all.count, seconds: now() - start, latencies: all, errors: collector.errors.reduce(0, +))
    }
}
