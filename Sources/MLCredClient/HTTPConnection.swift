import Glibc
import MLCredAPI

/// One HTTP/1.1 connection over the daemon's Unix socket. Keep-alive: send many requests in turn.
public final class HTTPConnection {
    /// The longest a request may wait for its answer (an unseal after failures waits up to 30 s).
    public static let answerTimeoutSeconds = 120

    private var fd: Int32
    private var buffer: [UInt8] = []
    /// Where `recv` writes, made once (a fresh zeroed 16 KiB per read showed in the profile).
    private var chunk = [UInt8](repeating: 0, count: 16384)
    /// When the last answer was read completely, or the connection was made (monotonic seconds).
    private var lastAnswered: Double?
    /// Whether the connection may carry another request: false after an error, or when the
    /// daemon said `Connection: close`.
    private var keepAlive = true
    /// Whether the last `send` failed before a byte of its answer arrived, with the peer gone:
    /// on a reused connection this means the daemon closed it idle and never read the request.
    public private(set) var closedBeforeAnswer = false
    /// Whether a status line of the current answer was read.
    private var answerStarted = false
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
        lastAnswered = Self.monotonicSeconds()  // idle since it was made
    }

    deinit {
        if fd >= 0 { close(fd) }
    }

    /// The uid of the process that listens on the other end, as the kernel recorded it when it
    /// called `listen` (SO_PEERCRED), or nil when the kernel does not say.
    public func peerUID() -> UInt32? { peerCredentials()?.uid }

    /// The pid of that process (SO_PEERCRED), or nil.
    public func peerPID() -> Int32? { peerCredentials()?.pid }

    private func peerCredentials() -> (pid: Int32, uid: UInt32)? {
        // struct ucred { pid_t pid; uid_t uid; gid_t gid; }
        var credentials: (Int32, UInt32, UInt32) = (0, 0, 0)
        var length = socklen_t(MemoryLayout.size(ofValue: credentials))
        guard getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &credentials, &length) == 0,
              Int(length) == MemoryLayout.size(ofValue: credentials) else { return nil }
        return (credentials.0, credentials.1)
    }

    /// Whether another request may be sent: the last answer was complete, the daemon did not ask
    /// to close, and the connection has been idle for less than `idleSeconds`.
    public func isReusable(idleSeconds: Double) -> Bool {
        guard keepAlive, let lastAnswered else { return false }
        return Self.monotonicSeconds() - lastAnswered < idleSeconds
    }

    static func monotonicSeconds() -> Double {
        var spec = timespec()
        clock_gettime(CLOCK_MONOTONIC, &spec)
        return Double(spec.tv_sec) + Double(spec.tv_nsec) / 1e9
    }

    /// Sends one request and reads its answer: `(status, body)`.
    public func send(method: String, path target: String, body: [UInt8]? = nil, bearer: String? = nil) throws -> (status: Int, body: [UInt8]) {
        closedBeforeAnswer = false
        keepAlive = false  // until this answer is read whole
        buffer.removeAll(keepingCapacity: true)
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
        let answer = try readResponse()
        lastAnswered = Self.monotonicSeconds()
        return answer
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
                closedBeforeAnswer = failure == EPIPE || failure == ECONNRESET
                throw ClientError.unreachable(path: path, reason: "write failed: \(String(cString: strerror(failure)))", errno: failure)
            }
            offset += written
        }
    }

    private func fill() throws {
        while true {
            let count = recv(fd, &chunk, chunk.count, 0)
            if count > 0 {
                buffer.append(contentsOf: chunk[..<count])
                return
            }
            if count == 0 {
                closedBeforeAnswer = buffer.isEmpty && !answerStarted
                throw ClientError.protocolError("the daemon closed the connection")
            }
            if errno == ECONNRESET, buffer.isEmpty, !answerStarted { closedBeforeAnswer = true }
            if errno == EINTR { continue }
            if errno == EAGAIN || errno == EWOULDBLOCK {
                throw ClientError.protocolError("no answer within \(Self.answerTimeoutSeconds) s")
            }
            throw ClientError.protocolError("read failed: \(String(cString: strerror(errno)))")
        }
    }

    private func readResponse() throws -> (status: Int, body: [UInt8]) {
        answerStarted = false
        while true {
            let end = try readHeadEnd()
            // Read as bytes: the head is ASCII, and String's Character-wise splitting was a
            // visible share of a client's CPU per request.
            let head = Self.parseHead(buffer[..<end])
            buffer.removeFirst(end + 4)
            guard let status = head.status else { throw ClientError.protocolError("bad status line") }
            answerStarted = true
            if status == 100 { continue }
            let length = head.contentLength
            let close = head.close
            while buffer.count < length { try fill() }
            let body = Array(buffer.prefix(length))
            buffer.removeFirst(length)
            keepAlive = !close && buffer.isEmpty
            return (status, body)
        }
    }

    /// What an answer's head says: its status (nil when the status line is not `VERSION CODE ...`),
    /// `Content-Length` (0 when absent or not a number) and whether it says `Connection: close`.
    static func parseHead(_ head: ArraySlice<UInt8>) -> (status: Int?, contentLength: Int, close: Bool) {
        var lines: [ArraySlice<UInt8>] = []
        var lineStart = head.startIndex
        var index = head.startIndex
        while index < head.endIndex {
            if head[index] == 13, index + 1 < head.endIndex, head[index + 1] == 10 {
                lines.append(head[lineStart..<index])
                index += 2
                lineStart = index
            } else {
                index += 1
            }
        }
        lines.append(head[lineStart..<head.endIndex])
        let statusWords = lines[0].split(separator: 32)
        let status = statusWords.count >= 2 ? decimal(statusWords[1]) : nil
        var length = 0
        var close = false
        for line in lines.dropFirst() {
            guard let colon = line.firstIndex(of: 58) else { continue }
            let name = line[..<colon]
            let value = trimmed(line[(colon + 1)...])
            if equalsIgnoringCase(name, "content-length") {
                length = decimal(value) ?? 0
            } else if equalsIgnoringCase(name, "connection") {
                close = equalsIgnoringCase(value, "close")
            }
        }
        return (status, length, close)
    }

    /// A non-negative decimal of at most 18 digits, or nil.
    private static func decimal(_ digits: ArraySlice<UInt8>) -> Int? {
        guard !digits.isEmpty, digits.count <= 18 else { return nil }
        var value = 0
        for byte in digits {
            guard byte >= 48, byte <= 57 else { return nil }
            value = value * 10 + Int(byte - 48)
        }
        return value
    }

    private static func trimmed(_ bytes: ArraySlice<UInt8>) -> ArraySlice<UInt8> {
        var slice = bytes
        while let first = slice.first, first == 32 || first == 9 { slice = slice.dropFirst() }
        while let last = slice.last, last == 32 || last == 9 { slice = slice.dropLast() }
        return slice
    }

    /// Whether `bytes` spell `lowercase` (ASCII) in any case.
    private static func equalsIgnoringCase(_ bytes: ArraySlice<UInt8>, _ lowercase: StaticString) -> Bool {
        guard bytes.count == lowercase.utf8CodeUnitCount else { return false }
        var expected = lowercase.utf8Start
        for byte in bytes {
            let folded = byte >= 65 && byte <= 90 ? byte | 0x20 : byte
            guard folded == expected.pointee else { return false }
            expected += 1
        }
        return true
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
