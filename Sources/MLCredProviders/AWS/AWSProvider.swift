import AsyncHTTPClient
import MLCredAPI
import MLCredPolicy
import NIOCore
import NIOHTTP1

/// `aws-assume-role`, `aws-session-token` and `aws-federation-token` grants: temporary
/// credentials from STS, requested with the vault's long-lived access key, signed here (SigV4)
/// and sent over AsyncHTTPClient to the secret's `endpoint_url` or the regional endpoint.
/// STS sessions cannot be ended early: their length is kept to what the token needs, never
/// below the 30 minutes SDKs require.
public struct AWSProvider: CredentialProvider {
    public let grantTypes: [GrantType] = [.awsAssumeRole, .awsSessionToken, .awsFederationToken]
    /// Region used when the secret names none (STS's global partition lives there).
    public static let defaultRegion = "us-east-1"
    /// Upper bound on one STS call, connection included: a stuck endpoint must not hold a job.
    static let requestTimeoutSeconds: Int64 = 10
    /// STS answers are a few KiB; anything larger is not STS.
    static let maxResponseBytes = 256 * 1024

    /// Shortest life accepted from STS (the 30-minute sessions asked for, less clock skew).
    static let minimumLifeSeconds = 20.0 * 60
    /// Longest life STS grants (federation tokens: 36 h), plus skew.
    static let maximumLifeSeconds = 37.0 * 3600
    /// Connection set-up limit.
    static let connectTimeoutSeconds: Int64 = 5

    /// One client for the process (never shut down: it lives as long as the daemon). Redirects
    /// are refused (a signed request must not be replayed elsewhere) and a refused connection
    /// fails at once instead of being retried until the deadline: the caller (an SDK calling
    /// credential_process) retries on its own.
    static let sharedClient: HTTPClient = {
        var configuration = HTTPClient.Configuration(
            redirectConfiguration: .disallow,
            timeout: .init(connect: .seconds(connectTimeoutSeconds), read: .seconds(requestTimeoutSeconds)))
        configuration.connectionPool.retryConnectionEstablishment = false
        return HTTPClient(eventLoopGroupProvider: .singleton, configuration: configuration)
    }()

    private let client: HTTPClient

    public init() {
        client = Self.sharedClient
    }

    /// Variables a job gets for an AWS secret whatever the credentials: region and STS endpoint.
    public static func jobEnvironment(secret: OpenedSecret) -> [String: String] {
        var env: [String: String] = [:]
        if let region = secret.fields["region"] {
            // SDKs differ: botocore (boto3, the AWS CLI) reads AWS_DEFAULT_REGION, the others AWS_REGION.
            env["AWS_REGION"] = region
            env["AWS_DEFAULT_REGION"] = region
        }
        if let endpoint = secret.fields["endpoint_url"] { env["AWS_ENDPOINT_URL_STS"] = endpoint }
        return env
    }

    public func issue(secret: OpenedSecret, context: IssuanceContext) async throws -> IssuedCredential {
        guard let keyID = secret.fields["access_key_id"], let secretKey = secret.fields["secret_access_key"] else {
            throw APIError(.secretIncomplete, "aws secret '\(secret.name)' has no access key")
        }
        let region = secret.fields["region"] ?? Self.defaultRegion
        let sessionName = STSProtocol.sessionName(subject: context.subject, accessor: context.accessor)
        var grant = context.grant
        // The session lasts what the token has left (SDKs refresh through credential_process),
        // within [30 min, the grant's duration or 1 h].
        let wanted = grant.durationSeconds ?? STSProtocol.defaultSessionSeconds
        let tokenLeft = Int((context.expiresAt - context.now).rounded(.up))
        grant.durationSeconds = max(STSProtocol.minimumSessionSeconds, min(wanted, tokenLeft))
        let parameters = STSProtocol.parameters(grant: grant, sessionName: sessionName, sourceIdentity: Self.sourceIdentity(context.subject))
        let signer = SigV4Signer(credentials: .init(accessKeyID: keyID, secretAccessKey: secretKey), region: region, service: "sts")
        guard let endpoint = STSProtocol.endpoint(region: region, endpointURL: secret.fields["endpoint_url"]) else {
            throw APIError(.invalidSecretFields, "aws secret '\(secret.name)' has an unusable endpoint_url: put it again as http(s)://HOST[:PORT]")
        }
        let signed = STSProtocol.request(parameters: parameters, signer: signer, endpoint: endpoint,
                                         amzDate: Self.amzDate(epochSeconds: context.now))
        let (status, body) = try await send(signed)
        let credentials = try STSProtocol.parse(status: status, body: body)
        guard let expiration = Timestamp.parse(credentials.expiration) else {
            throw APIError(.upstreamAnswerInvalid, "STS answered with an unreadable expiration '\(STSProtocol.quotable(credentials.expiration))'")
        }
        // What is handed out lives at least as long as SDKs need (they refresh 15 minutes
        // before the end) and no longer than STS ever grants (36 h).
        let now = context.now
        guard expiration >= now + Self.minimumLifeSeconds, expiration <= now + Self.maximumLifeSeconds else {
            throw APIError(.upstreamAnswerInvalid, "STS answered with credentials expiring at \(Timestamp.format(epochSeconds: expiration)), outside what can be handed out")
        }
        var env = Self.jobEnvironment(secret: secret)
        let plain = Set(env.keys).union(["AWS_CREDENTIAL_EXPIRATION"])
        env["AWS_ACCESS_KEY_ID"] = credentials.accessKeyID
        env["AWS_SECRET_ACCESS_KEY"] = credentials.secretAccessKey
        env["AWS_SESSION_TOKEN"] = credentials.sessionToken
        env["AWS_CREDENTIAL_EXPIRATION"] = Timestamp.format(epochSeconds: expiration)
        let providerID = grant.type == .awsSessionToken ? "session:\(credentials.accessKeyID)" : sessionName
        return IssuedCredential(env: env, plain: plain, providerID: providerID, expiresAt: expiration)
    }

    /// `SourceIdentity` allows `[\w+=,.@-]`, 2-64 characters.
    static func sourceIdentity(_ subject: String) -> String {
        let allowed = Set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_+=,.@-")
        let cleaned = String(subject.map { allowed.contains($0) ? $0 : "-" }.prefix(64))
        return cleaned.count >= 2 ? cleaned : "mlcred-" + cleaned
    }

    /// `YYYYMMDD'T'HHMMSS'Z'`.
    static func amzDate(epochSeconds: Double) -> String {
        let iso = Timestamp.format(epochSeconds: epochSeconds)  // 2026-11-26T17:03:04.123Z
        return String(iso.prefix(19).filter { $0 != "-" && $0 != ":" }) + "Z"
    }

    func send(_ signed: STSProtocol.Request) async throws -> (Int, [UInt8]) {
        var request = HTTPClientRequest(url: signed.url)
        request.method = .POST
        for (name, value) in signed.headers { request.headers.replaceOrAdd(name: name, value: value) }
        request.body = .bytes(ByteBuffer(bytes: signed.body))
        request.headers.replaceOrAdd(name: "user-agent", value: "mlcred/\(mlcredVersion)")
        let client = self.client
        let sending = request
        do {
            // The whole exchange, body included, is bounded: a trickled body must not hold a job.
            return try await Deadline.run(seconds: Double(Self.requestTimeoutSeconds), what: "STS at \(signed.url)") {
                let response = try await client.execute(sending, timeout: .seconds(Self.requestTimeoutSeconds))
                let body = try await response.body.collect(upTo: Self.maxResponseBytes)
                return (Int(response.status.code), Array(body.readableBytesView))
            }
        } catch let error as APIError {
            throw error
        } catch {
            // Transport errors name the endpoint, never a key: the request's signed headers stay here.
            throw APIError(Self.transportReason(error), "cannot reach STS at \(signed.url): \(Self.describe(error))")
        }
    }

    /// The reason a failed exchange with STS is answered with: no answer in time, an answer
    /// over the size limit, or STS out of reach.
    static func transportReason(_ error: any Error) -> APIErrorReason {
        if let error = error as? HTTPClientError, error == .deadlineExceeded || error == .readTimeout { return .upstreamTimeout }
        if error is NIOTooManyBytesError { return .upstreamAnswerInvalid }
        return .upstreamUnreachable
    }

    static func describe(_ error: any Error) -> String {
        if let error = error as? HTTPClientError {
            switch error {
            case .deadlineExceeded, .readTimeout: return "no answer within \(requestTimeoutSeconds) s"
            case .connectTimeout: return "could not connect within \(connectTimeoutSeconds) s"
            case .remoteConnectionClosed: return "the server closed the connection"
            default: return "\(error)"
            }
        }
        let text = "\(error)"
        if text.contains("connectionRefused") || text.contains("Connection refused") { return "connection refused" }
        if text.contains("TooManyBytes") { return "the answer is larger than \(maxResponseBytes / 1024) KiB" }
        return text
    }
}
