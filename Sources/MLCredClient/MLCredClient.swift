import MLCredAPI

/// The thin client of mlcredd: typed calls over `HTTPConnection`. FoundationEssentials and
/// POSIX only, so any Swift tool can embed it.
///
/// One keep-alive connection serves all of a client's calls (`mlcred run` issues, renews and
/// revokes on it): each new connection costs the daemon a peer attestation. A connection idle
/// for longer than the daemon keeps one open is replaced before use; a reused connection that
/// the daemon closed before it answered a byte is replaced and the request sent once more
/// (the daemon closes only idle connections, so the request was never read). Not thread-safe:
/// one client per thread.
public final class MLCredClient {
    /// How long a connection may sit idle and still be reused: under the daemon's 10 s idle
    /// close, with a margin for the time a request takes to arrive.
    static let reuseIdleSeconds = 8.0

    /// The socket this client talks to.
    public let socketPath: String
    private var connection: HTTPConnection?
    /// When set, every request first checks that the listening process runs as one of these
    /// (`DaemonTrust`); verbs that send a passphrase, share or secret value set it.
    public var trustedDaemon: DaemonTrust?

    /// A client for the daemon at `socketPath`, or at the discovered default (SPEC §5).
    public init(socketPath: String? = nil) throws {
        self.socketPath = try SocketLocator.resolve(explicit: socketPath)
    }

    /// Connects now and checks who listens (`trustedDaemon`), so a verb can refuse before it asks
    /// anyone for a passphrase. The connection is kept for the first request.
    public func verifyTrustedDaemon() throws {
        guard let trustedDaemon else { return }
        if connection == nil || connection?.isReusable(idleSeconds: Self.reuseIdleSeconds) != true {
            connection = try HTTPConnection(path: socketPath)
        }
        if let connection { try trustedDaemon.check(connection) }
    }

    /// Sends one request and decodes a `T` from a 2xx answer; API errors become `ClientError.api`.
    public func call<T: Decodable>(_ method: String, _ path: String, body: (some Encodable)? = Optional<Never>.none,
                                   bearer: String? = nil, as type: T.Type = T.self) throws -> T {
        let raw = try callRaw(method, path, body: body, bearer: bearer)
        do {
            // The hot answers are read without Foundation's decoder: its first use costs
            // milliseconds of type look-ups in a static binary, on every `mlcred run`.
            if let fast = type as? any JSONBodyDecodable.Type, let value = try JSONObjectReader.decode(fast, from: raw) as? T {
                return value
            }
            return try APIJSON.decode(type, from: raw)
        } catch {
            throw ClientError.protocolError("could not decode the answer to \(method) \(path)")
        }
    }

    /// Sends one request and returns the raw JSON of a 2xx answer.
    public func callRaw(_ method: String, _ path: String, body: (some Encodable)? = Optional<Never>.none,
                        bearer: String? = nil) throws -> [UInt8] {
        let encoded = try body.map { body in
            if let fast = body as? any JSONBodyEncodable { return JSONWriter.encode(fast) }
            return try APIJSON.encode(body)
        }
        let (status, answer) = try exchange(method: method, path: path, body: encoded, bearer: bearer)
        guard (200..<300).contains(status) else {
            if let body = try? APIJSON.decode(APIErrorBody.self, from: answer) {
                let error = body.error
                if let details = error.details, !details.isEmpty {
                    throw ClientError.apiDetailed(status: status, code: error.code, reason: error.reason, message: error.message, details: details)
                }
                throw ClientError.api(status: status, code: error.code, reason: error.reason, message: error.message)
            }
            throw ClientError.protocolError("HTTP \(status) without an error body")
        }
        return answer
    }

    /// Sends one request on the kept connection, or a fresh one (see the type's comment).
    private func exchange(method: String, path: String, body: [UInt8]?, bearer: String?) throws -> (status: Int, body: [UInt8]) {
        if let kept = connection, kept.isReusable(idleSeconds: Self.reuseIdleSeconds) {
            try trustedDaemon?.check(kept)
            do {
                return try kept.send(method: method, path: path, body: body, bearer: bearer)
            } catch where kept.closedBeforeAnswer {
                connection = nil  // closed by the daemon while idle: the request was never read
            }
        }
        connection = nil
        let fresh = try HTTPConnection(path: socketPath)
        try trustedDaemon?.check(fresh)
        let answer = try fresh.send(method: method, path: path, body: body, bearer: bearer)
        connection = fresh
        return answer
    }
}
