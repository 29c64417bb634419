import Glibc
import MLCredAPI
import MLCredClient

/// `mlcred run`'s socket for its job (SPEC §8): `MLCRED_SOCKET` in the job's environment, in
/// `run`'s private directory. The job talks to the daemon only through it:
/// - `credential-process` (and any request for one AWS grant's credentials) is answered from the
///   STS session `run` holds for that grant, minted again only when it has less than
///   `refreshWindowSeconds` left: one session per job and grant, however often SDKs ask;
/// - every other request is forwarded to the daemon as it came (so the daemon sees `run` as
///   the caller, with the job's uid);
/// - every credential value in an answer is handed to the masker before the answer leaves, so a
///   value the job fetches itself (a `curl` of `/v1/credentials`) is masked in its output too.
///
/// Single-threaded: `JobRunner`'s poll loop calls `pollDescriptors` and `service`. A request is
/// answered before the next one is read; forwarding waits for the daemon (milliseconds, or an
/// STS round trip), during which the job's output waits in its pipe.
final class RunSocket {
    /// botocore's advisory refresh window: a held session with less left is replaced.
    static let defaultRefreshWindowSeconds = 15.0 * 60
    /// Tests only: a wider window (seconds), so a refresh happens within a test's time.
    static let refreshWindowVariable = "MLCRED_UNSAFE_TEST_AWS_REFRESH_WINDOW"
    static let maximumHead = 8 * 1024
    static let maximumBody = 64 * 1024
    static let maximumConnections = 64

    let path: String
    private let listener: Int32
    private let daemonSocket: String
    /// Every token of this run (several roles: one each); the first is the job's `MLCRED_TOKEN`.
    private let tokens: [String]
    /// Grant → the token of the role it belongs to: a request under any of this run's tokens
    /// for one role's grants is sent under that role's token (SPEC §6: `MLCRED_TOKEN` serves all).
    private let grantTokens: [String: String]
    /// The AWS grants, whose sessions this socket holds.
    private let awsGrants: Set<String>
    /// The first AWS grant of the first role with one: credential-process without `--grant`.
    private let defaultAWSGrant: String?
    private let learn: ([String]) -> Void
    private let refreshWindow: Double
    private var connections: [Int32: [UInt8]] = [:]
    /// AWS grant → the answer holding its current session, and when that session ends.
    private var sessions: [String: (answer: [UInt8], expiresAt: Double)] = [:]
    /// STS sessions minted through this socket (and at start), for the job's summary and tests.
    private(set) var minted = 0

    /// Binds `path` (in a directory only this user can enter) for `tokens`.
    init(path: String, daemonSocket: String, tokens: [String], grantTokens: [String: String], awsGrants: Set<String>,
         defaultAWSGrant: String?, learn: @escaping ([String]) -> Void) throws {
        self.path = path
        self.daemonSocket = daemonSocket
        self.tokens = tokens
        self.grantTokens = grantTokens
        self.awsGrants = awsGrants
        self.defaultAWSGrant = defaultAWSGrant
        self.learn = learn
        refreshWindow = Environment.value(Self.refreshWindowVariable).flatMap(Double.init) ?? Self.defaultRefreshWindowSeconds
        listener = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue) | Int32(SOCK_NONBLOCK.rawValue), 0)
        guard listener >= 0, path.utf8.count < 108 else { throw CLIError("cannot create the job's socket \(path)") }
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        withUnsafeMutableBytes(of: &address.sun_path) { raw in
            for (index, byte) in path.utf8.enumerated() { raw[index] = byte }
        }
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(listener, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        }
        guard bound == 0, chmod(path, 0o600) == 0, listen(listener, 64) == 0 else {
            let failure = String(cString: strerror(errno))
            Glibc.close(listener)
            throw CLIError("cannot listen on the job's socket \(path): \(failure)")
        }
    }

    deinit {
        close()
    }

    private var closed = false

    /// Stops serving and removes the socket.
    func close() {
        guard !closed else { return }
        closed = true
        for fd in connections.keys { Glibc.close(fd) }
        connections.removeAll()
        Glibc.close(listener)
        unlink(path)
    }

    /// Holds `answer` (a credentials answer for AWS grant `grant`, fetched at start) as its session.
    func hold(grant: String, answer: [UInt8]) {
        sessions[grant] = (answer, Self.expiration(of: answer) ?? 0)
        minted += 1
    }

    /// The descriptors to poll for input: the listener and every open connection.
    var pollDescriptors: [Int32] { [listener] + connections.keys.sorted() }

    /// Handles `fd`, which poll found readable.
    func service(_ fd: Int32) {
        if fd == listener {
            acceptAll()
        } else {
            read(from: fd)
        }
    }

    private func acceptAll() {
        while true {
            let fd = accept(listener, nil, nil)
            guard fd >= 0 else { return }
            _ = fcntl(fd, F_SETFD, FD_CLOEXEC)
            _ = fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK)
            // Only this user's processes (the job and its workers); root could enter anyway.
            // struct ucred { pid_t pid; uid_t uid; gid_t gid; }
            var credentials: (Int32, UInt32, UInt32) = (0, 0, 0)
            var length = socklen_t(MemoryLayout.size(ofValue: credentials))
            guard getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &credentials, &length) == 0, credentials.1 == getuid() || credentials.1 == 0,
                  connections.count < Self.maximumConnections else {
                Glibc.close(fd)
                continue
            }
            connections[fd] = []
        }
    }

    private func read(from fd: Int32) {
        var chunk = [UInt8](repeating: 0, count: 16 * 1024)
        let count = Glibc.read(fd, &chunk, chunk.count)
        if count == 0 || (count < 0 && errno != EAGAIN && errno != EINTR) {
            drop(fd)
            return
        }
        guard count > 0 else { return }
        connections[fd, default: []] += chunk.prefix(count)
        while let buffered = connections[fd] {
            switch Self.parse(buffered) {
            case .incomplete(let expectsContinue):
                if expectsContinue { send(fd, Array("HTTP/1.1 100 Continue\r\n\r\n".utf8)) }
                return
            case .invalid(let status, let message):
                respond(fd, status: status, body: Self.errorBody(status: status, message: message), close: true)
                return
            case .request(let request, let used):
                connections[fd] = Array(buffered.dropFirst(used))
                let (status, body) = handle(request)
                respond(fd, status: status, body: body, close: request.close)
                if request.close { return }
            }
        }
    }

    private func drop(_ fd: Int32) {
        Glibc.close(fd)
        connections[fd] = nil
    }

    // MARK: requests

    struct Request {
        var method: String
        var target: String
        var bearer: String?
        var body: [UInt8]
        var close: Bool
    }

    enum Parsed {
        case incomplete(expectsContinue: Bool)
        case invalid(Int, String)
        case request(Request, used: Int)
    }

    /// One HTTP/1.1 request from the front of `bytes`, as the daemon's limits allow.
    static func parse(_ bytes: [UInt8]) -> Parsed {
        let terminator: [UInt8] = [13, 10, 13, 10]
        guard let headEnd = bytes.firstRange(of: terminator)?.lowerBound else {
            return bytes.count > maximumHead ? .invalid(431, "request head over 8 KiB") : .incomplete(expectsContinue: false)
        }
        guard headEnd <= maximumHead else { return .invalid(431, "request head over 8 KiB") }
        let head = String(decoding: bytes[..<headEnd], as: UTF8.self)
        var lines = head.split(separator: "\r\n", omittingEmptySubsequences: false).map(String.init)
        let requestLine = lines.removeFirst().split(separator: " ", omittingEmptySubsequences: false)
        guard requestLine.count == 3, requestLine[2].hasPrefix("HTTP/1."), requestLine[1].hasPrefix("/"),
              requestLine[0].allSatisfy({ $0.isASCII && $0.isUppercase }) else {
            return .invalid(400, "malformed request line")
        }
        var contentLength = 0
        var bearer: String?
        var close = requestLine[2] == "HTTP/1.0"
        var expectsContinue = false
        for line in lines {
            guard let colon = line.firstIndex(of: ":") else { return .invalid(400, "malformed header") }
            let name = line[..<colon].lowercased()
            var value = Substring(line[line.index(after: colon)...])
            while value.first == " " || value.first == "\t" { value = value.dropFirst() }
            while value.last == " " || value.last == "\t" { value = value.dropLast() }
            switch name {
            case "content-length":
                guard let length = Int(value), length >= 0 else { return .invalid(400, "bad Content-Length") }
                guard length <= maximumBody else { return .invalid(413, "request bodies are limited to 64 KiB") }
                contentLength = length
            case "transfer-encoding":
                return .invalid(411, "send a Content-Length, not chunked")
            case "authorization":
                if value.hasPrefix("Bearer ") { bearer = String(value.dropFirst("Bearer ".count)) }
            case "connection":
                close = close || value.lowercased() == "close"
            case "expect":
                expectsContinue = value.lowercased() == "100-continue"
            default:
                break
            }
        }
        let bodyStart = headEnd + terminator.count
        guard bytes.count >= bodyStart + contentLength else { return .incomplete(expectsContinue: expectsContinue && bytes.count == bodyStart) }
        let request = Request(method: String(requestLine[0]), target: String(requestLine[1]), bearer: bearer,
                              body: Array(bytes[bodyStart..<(bodyStart + contentLength)]), close: close)
        return .request(request, used: bodyStart + contentLength)
    }

    /// The answer to `request`: from a held session, or the daemon's.
    private func handle(_ incoming: Request) -> (Int, [UInt8]) {
        let request = routed(incoming)
        if let grant = heldGrant(for: request) {
            if let held = sessions[grant], held.expiresAt - now() >= refreshWindow {
                return (200, held.answer)
            }
            let answer = forward(request)
            if answer.0 == 200 {
                sessions[grant] = (answer.1, Self.expiration(of: answer.1) ?? 0)
                minted += 1
            }
            return answer
        }
        return forward(request)
    }

    /// `request` under the token of the role whose grants it asks for, when it came under any of
    /// this run's tokens and names grants of one role only.
    private func routed(_ request: Request) -> Request {
        guard request.method == "POST", request.target == "/v1/credentials", let bearer = request.bearer, tokens.contains(bearer),
              let asked = try? JSONObjectReader.decode(CredentialsRequest.self, from: request.body),
              let names = asked.grants, let owner = names.first.flatMap({ grantTokens[$0] }),
              names.allSatisfy({ grantTokens[$0] == owner }) else { return request }
        var out = request
        out.bearer = owner
        return out
    }

    /// The AWS grant whose held session answers `request`, if it asks for exactly one AWS grant's
    /// credentials under one of this run's tokens.
    private func heldGrant(for request: Request) -> String? {
        guard request.method == "POST", request.target == "/v1/credentials", let bearer = request.bearer, tokens.contains(bearer),
              let asked = try? JSONObjectReader.decode(CredentialsRequest.self, from: request.body.isEmpty ? Array("{}".utf8) : request.body)
        else { return nil }
        let grant: String?
        switch asked.grants {
        case let names? where names.count == 1: grant = names[0]
        case nil where asked.aws == .only: grant = defaultAWSGrant
        default: grant = nil
        }
        let mode = asked.aws ?? .mint
        guard let grant, awsGrants.contains(grant), grantTokens[grant] == bearer, mode != .defer else { return nil }
        return grant
    }

    /// Sends `request` to the daemon and learns the credential values in a successful answer.
    private func forward(_ request: Request) -> (Int, [UInt8]) {
        do {
            let connection = try HTTPConnection(path: daemonSocket)
            let answer = try connection.send(method: request.method, path: request.target,
                                             body: request.body.isEmpty && request.method == "GET" ? nil : request.body, bearer: request.bearer)
            if (200..<300).contains(answer.status) { learn(Self.credentialValues(in: answer.body)) }
            return answer
        } catch {
            return (502, Self.errorBody(status: 502, message: "mlcred run could not reach mlcredd: \(error)"))
        }
    }

    /// Values in an answer that are credentials: every `token`, and the secret `env` values of
    /// credentials (those not listed in `plain`), at any depth (a token answer carries its credentials).
    static func credentialValues(in body: [UInt8]) -> [String] {
        guard let value = try? JSONParser.parse(body) else { return [] }
        var out: [String] = []
        func walk(_ value: JSONValue) {
            switch value {
            case .object(let members):
                var plain: Set<String> = []
                if case .array(let names)? = members["plain"] {
                    for case .string(let name) in names { plain.insert(name) }
                }
                for (key, member) in members {
                    if key == "token", case .string(let text) = member { out.append(text) }
                    if key == "env", case .object(let variables) = member {
                        for (name, variable) in variables where !plain.contains(name) {
                            if case .string(let text) = variable { out.append(text) }
                        }
                    }
                    walk(member)
                }
            case .array(let elements):
                for element in elements { walk(element) }
            default:
                break
            }
        }
        walk(value)
        return out
    }

    /// When the AWS session in a credentials answer ends (`AWS_CREDENTIAL_EXPIRATION`, else `expires_at`).
    static func expiration(of answer: [UInt8]) -> Double? {
        guard let response = try? JSONObjectReader.decode(CredentialsResponse.self, from: answer) else { return nil }
        return Timestamp.parse(response.env["AWS_CREDENTIAL_EXPIRATION"] ?? response.expiresAt)
    }

    // MARK: answers

    private func respond(_ fd: Int32, status: Int, body: [UInt8], close: Bool) {
        var head = "HTTP/1.1 \(status) \(Self.reasonPhrase(status))\r\nContent-Type: application/json\r\nContent-Length: \(body.count)\r\n"
        if close { head += "Connection: close\r\n" }
        send(fd, Array((head + "\r\n").utf8) + body)
        if close { drop(fd) }
    }

    /// Writes all of `bytes`, waiting for the job to read (it is the job's own socket).
    private func send(_ fd: Int32, _ bytes: [UInt8]) {
        var offset = 0
        while offset < bytes.count {
            let n = bytes[offset...].withUnsafeBytes { Glibc.send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
            if n > 0 {
                offset += n
            } else if n < 0 && (errno == EAGAIN || errno == EINTR) {
                var descriptor = pollfd(fd: fd, events: Int16(POLLOUT), revents: 0)
                if poll(&descriptor, 1, 5000) <= 0 { return drop(fd) }
            } else {
                return drop(fd)
            }
        }
    }

    static func errorBody(status: Int, message: String) -> [UInt8] {
        let code: APIErrorCode = switch status {
        case 413: .tooLarge
        case 502: .upstream
        default: .badRequest
        }
        var writer = JSONWriter()
        writer.beginObject()
        writer.beginObject("error")
        writer.field("code", code.rawValue)
        writer.field("message", message)
        writer.endObject()
        writer.endObject()
        return writer.bytes
    }

    static func reasonPhrase(_ status: Int) -> String {
        switch status {
        case 200: "OK"
        case 201: "Created"
        case 204: "No Content"
        case 400: "Bad Request"
        case 401: "Unauthorized"
        case 403: "Forbidden"
        case 404: "Not Found"
        case 409: "Conflict"
        case 411: "Length Required"
        case 413: "Payload Too Large"
        case 429: "Too Many Requests"
        case 431: "Request Header Fields Too Large"
        case 502: "Bad Gateway"
        case 503: "Service Unavailable"
        case 507: "Insufficient Storage"
        default: status < 400 ? "OK" : "Error"
        }
    }

    private func now() -> Double {
        var spec = timespec()
        clock_gettime(CLOCK_REALTIME, &spec)
        return Double(spec.tv_sec) + Double(spec.tv_nsec) / 1e9
    }
}
