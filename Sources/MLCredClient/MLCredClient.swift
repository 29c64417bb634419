import MLCredAPI

/// The thin client of mlcredd: typed calls over `HTTPConnection`. FoundationEssentials and
/// POSIX only, so any Swift tool can embed it.
public struct MLCredClient {
    /// The socket this client talks to.
    public let socketPath: String

    /// A client for the daemon at `socketPath`, or at the discovered default (SPEC §5).
    public init(socketPath: String? = nil) throws {
        self.socketPath = try SocketLocator.resolve(explicit: socketPath)
    }

    /// Sends one request and decodes a `T` from a 2xx answer; API errors become `ClientError.api`.
    public func call<T: Decodable>(_ method: String, _ path: String, body: (some Encodable)? = Optional<Never>.none,
                                   bearer: String? = nil, as type: T.Type = T.self) throws -> T {
        let raw = try callRaw(method, path, body: body, bearer: bearer)
        do {
            return try APIJSON.decode(type, from: raw)
        } catch {
            throw ClientError.protocolError("could not decode the answer to \(method) \(path)")
        }
    }

    /// Sends one request and returns the raw JSON of a 2xx answer.
    public func callRaw(_ method: String, _ path: String, body: (some Encodable)? = Optional<Never>.none,
                        bearer: String? = nil) throws -> [UInt8] {
        let connection = try HTTPConnection(path: socketPath)
        let encoded = try body.map { try APIJSON.encode($0) }
        let (status, answer) = try connection.send(method: method, path: path, body: encoded, bearer: bearer)
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
}
