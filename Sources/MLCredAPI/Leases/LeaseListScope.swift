/// Which leases `GET /v1/leases` lists (`mlcred lease list [--ended | --all]`).
public enum LeaseListScope: String, Sendable, CaseIterable {
    /// Live and failing: what needs attention (the default).
    case live
    /// Also ended leases still valid at their provider (STS sessions, JWTs cannot be recalled).
    case ended
    /// Every lease kept (ended ones are deleted after the daemon's retention).
    case all

    /// The scope a request's query names (`?ended=true`, `?all=true`); `all` wins. Nil when
    /// either holds anything but `true` or `false` (`?all=1` read as the default list was a
    /// silent surprise).
    public init?(query: [String: String]) {
        for key in ["all", "ended"] {
            if let value = query[key], value != "true" && value != "false" { return nil }
        }
        self = query["all"] == "true" ? .all : query["ended"] == "true" ? .ended : .live
    }
}
