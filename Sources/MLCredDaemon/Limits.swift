/// Every limit and default of the daemon, in one place, each with its reason.
public enum Limits {
    /// Largest request body (SPEC §9); refused from `Content-Length` before it is read.
    public static let maxBodyBytes = 64 * 1024
    /// Largest total size of request headers (SPEC §9).
    public static let maxHeaderBytes = 8 * 1024
    /// A connection must complete a request this long after opening or after its last answer
    /// (SPEC §9: idle connections close after 10 s); stops slow-loris holders of connections.
    public static let requestDeadlineSeconds: Int64 = 10
    /// All connections at once: bounded well under the file-descriptor limit (each connection
    /// holds a socket and a pidfd).
    public static let maxConnections = 4096
    /// Connections of one uid at once, so one user cannot starve the others.
    public static let maxConnectionsPerUID = 256
    /// Time SIGTERM waits for in-flight requests before exiting anyway.
    public static let drainSeconds = 10.0
    /// Upper bound of `GET /v1/audit?limit=`.
    public static let maxAuditPage = 1000
    /// Default of `GET /v1/audit` without `limit`.
    public static let defaultAuditPage = 50
    /// How long a uid's user name and a gid's group name are cached.
    public static let nameCacheSeconds = 60.0
}
