/// `POST /v1/emergency/open` (SPEC §13): an admin asks for (or, as the second admin, opens) an
/// emergency role, with the reason every record under it carries.
public struct EmergencyOpenRequest: Codable, Sendable {
    public var role: String
    public var reason: String
    /// How long it stays open, e.g. "30m" (default and maximum 1 h).
    public var duration: String?

    enum CodingKeys: String, CodingKey {
        case role, reason
        case duration = "for"
    }

    public init(role: String, reason: String, duration: String?) {
        self.role = role
        self.reason = reason
        self.duration = duration
    }
}

/// `POST /v1/emergency/close`.
public struct EmergencyCloseRequest: Codable, Sendable {
    public var role: String

    public init(role: String) {
        self.role = role
    }
}

/// One emergency role's state.
public struct EmergencyInfo: Codable, Sendable, Equatable {
    public enum State: String, Codable, Sendable {
        /// Asked for by one admin; a second must confirm before `expires_at`.
        case pending
        /// Open until `until`.
        case open
    }

    public var role: String
    public var state: State
    public var reason: String
    /// The admins who asked and confirmed.
    public var openedBy: [UInt32]
    /// When a pending request lapses, or an open emergency ends.
    public var until: String

    enum CodingKeys: String, CodingKey {
        case role, state, reason, until
        case openedBy = "opened_by"
    }

    public init(role: String, state: State, reason: String, openedBy: [UInt32], until: String) {
        self.role = role
        self.state = state
        self.reason = reason
        self.openedBy = openedBy
        self.until = until
    }
}

/// `POST /v1/emergency/close`: the role closed, and how many of its live tokens were revoked.
public struct EmergencyCloseResponse: Codable, Sendable, Equatable {
    public var role: String
    public var revokedTokens: Int

    enum CodingKeys: String, CodingKey {
        case role
        case revokedTokens = "revoked_tokens"
    }

    public init(role: String, revokedTokens: Int) {
        self.role = role
        self.revokedTokens = revokedTokens
    }
}

/// `GET /v1/emergency`.
public struct EmergencyListResponse: Codable, Sendable {
    public var emergencies: [EmergencyInfo]

    public init(emergencies: [EmergencyInfo]) {
        self.emergencies = emergencies
    }
}
