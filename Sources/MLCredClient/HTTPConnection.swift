import Glibc
import MLCredAPI

/// One HTTP/1.1 connection over the daemon's Unix socket. Keep-alive: send many requests in turn.
public final class HTTPConnection {
    /// The longest a request may wait for its answer (an unseal after failures waits up to 30 s).
    public static let answerTimeoutSeconds = 120

    private var fd: Int32
    private var buffer: [UInt8] = []
    /// The socket path this connection reached.
    public let path: String

    /// Connects to the daemon at `path`.
    public init(path: String) throws {
        self.path = path
        guard path.utf8.count < 108 else { throw ClientError.unreachable(path: path, reason: "socket path too long", errno: nil) }
        fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else {
            let failure = errno
            throw ClientError.unreachable(path: path, reason: String(cString: strerror(failure)), errno: failure)
        }
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        let bytes = Array(path.utf8)
        withUnsafeMutableBytes(of: &address.sun_path) { raw in
            for (index, byte) in bytes.enumerated() { raw[index] = byte }
        }
        let result = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        }
        guard result == 0 else {
            let failure = errno
            close(fd)
            throw ClientError.unreachable(path: path, reason: String(cString: strerror(failure)), errno: failure)
        }
        var timeout = timeval(tv_sec: Self.answerTimeoutSeconds, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
    }

    deinit {
        if fd >= 0 { close(fd) }
    }

    /// Sends one request and reads its answer: `(status, body)`.
    public func send(method: String, path target: String, body: [UInt8]? = nil, bearer: String? = nil) throws -> (status: Int, body: [UInt8]) {
        var head = "\(method) \(target) HTTP/1.1\r\nHost: mlcred\r\nUser-Agent: mlcred/\(mlcredVersion)\r\n"
        if let bearer { head += "Authorization: Bearer \(bearer)\r\n" }
        if let body {
            head += "Content-Type: application/json\r\nContent-Length: \(body.count)\r\n"
        } else if method != "GET" {
            head += "Content-Length: 0\r\n"
        }
        head += "\r\n"
        var request = Array(head.utf8)
        if let body { request += body }
        try writeAll(request)
        return try readResponse()
    }

    private func writeAll(_ bytes: [UInt8]) throws {
        var offset = 0
        while offset < bytes.count {
            let written = bytes.withUnsafeBytes { raw in
                Glibc.send(fd, raw.baseAddress.map { $0 + offset }, bytes.count - offset, Int32(MSG_NOSIGNAL))
            }
            if written < 0 {
                let failure = errno
                if failure == EINTR { continue }
                throw ClientError.unreachable(path: path, reason: "write failed: \(String(cString: strerror(failure)))", errno: failure)
            }
            offset += written
        }
    }

    private func fill() throws {
        var chunk = [UInt8](repeating: 0, count: 16384)
        while true {
            let count = recv(fd, &chunk, chunk.count, 0)
            if count > 0 {
                buffer.append(contentsOf: chunk.prefix(count))
                return
            }
            if count == 0 { throw ClientError.protocolError("the daemon closed the connection") }
            if errno == EINTR { continue }
            if errno == EAGAIN || errno == EWOULDBLOCK {
                throw ClientError.protocolError("no answer within \(Self.answerTimeoutSeconds) s")
            }
            throw ClientError.protocolError("read failed: \(String(cString: strerror(errno)))")
        }
    }

    private func readResponse() throws -> (status: Int, body: [UInt8]) {
        while true {
            let end = try readHeadEnd()
            let headText = String(decoding: buffer[..<end], as: UTF8.self)
            buffer.removeFirst(end + 4)
            let lines = headText.split(separator: "\r\n", omittingEmptySubsequences: false)
            let statusParts = lines.first?.split(separator: " ") ?? []
            guard statusParts.count >= 2, let status = Int(statusParts[1]) else {
                throw ClientError.protocolError("bad status line")
            }
            if status == 100 { continue }
            var length = 0
            for line in lines.dropFirst() {
                let pair = line.split(separator: ":", maxSplits: 1)
                if pair.count == 2, pair[0].lowercased() == "content-length" {
                    length = Int(pair[1].trimmingCharacters(in: [" "])) ?? 0
                }
            }
            while buffer.count < length { try fill() }
            let body = Array(buffer.prefix(length))
            buffer.removeFirst(length)
            return (status, body)
        }
    }

    private func readHeadEnd() throws -> Int {
        var searchFrom = 0
        while true {
            if buffer.count >= 4 {
                var index = searchFrom
                while index + 3 < buffer.count {
                    if buffer[index] == 13, buffer[index + 1] == 10, buffer[index + 2] == 13, buffer[index + 3] == 10 { return index }
                    index += 1
                }
                searchFrom = max(0, buffer.count - 3)
            }
            if buffer.count > 64 * 1024 { throw ClientError.protocolError("answer headers too large") }
            try fill()
        }
    }
}

extension Substring {
    func trimmingCharacters(in set: Set<Character>) -> String {
        var text = self
        while let first = text.first, set.contains(first) { text = text.dropFirst() }
        while let last = text.last, set.contains(last) { text = text.dropLast() }
        return String(text)
    }
}
