/// What a token is bound to (`POST /v1/tokens` `bind`).
public enum TokenBinding: String, Codable, Sendable, CaseIterable {
    /// Nothing: the token lives until it expires or is revoked (what omitting `bind` means).
    case unbound = "none"
    /// The calling process, as the kernel names it (its pidfd): the daemon revokes the token when
    /// that process is gone (what `mlcred run` asks for; required for phi roles).
    case process
}
