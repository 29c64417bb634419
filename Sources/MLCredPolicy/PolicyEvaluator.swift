/// The caller as policies see it.
public struct PolicySubject: Sendable, Equatable {
    public var uid: UInt32
    public var user: String?
    public var gid: UInt32
    /// Supplementary gids, with their names where known.
    public var groups: [(gid: UInt32, name: String?)]
    public var unit: String?

    public init(uid: UInt32, user: String?, gid: UInt32, groups: [(gid: UInt32, name: String?)], unit: String?) {
        self.uid = uid
        self.user = user
        self.gid = gid
        self.groups = groups
        self.unit = unit
    }

    public static func == (a: PolicySubject, b: PolicySubject) -> Bool {
        a.uid == b.uid && a.user == b.user && a.gid == b.gid && a.unit == b.unit
            && a.groups.map(\.gid) == b.groups.map(\.gid) && a.groups.map(\.name) == b.groups.map(\.name)
    }

    /// `alice (uid 1001)`; a simulated caller with no uid is just `alice`.
    var label: String {
        guard let user else { return "uid \(uid)" }
        return uid == UInt32.max - 1 ? user : "\(user) (uid \(uid))"
    }
}

/// A decision and the chain of reasons that led to it.
public struct PolicyDecision: Sendable, Equatable {
    public var allowed: Bool
    public var reasons: [String]

    /// The last reason: the one that decided.
    public var summary: String { reasons.last ?? (allowed ? "allowed" : "denied") }
}

/// Whose environment and phi setting a decision is made for: a running daemon's, or ones a
/// caller chose for a simulation (offline `policy explain`, `policy test`). Only the wording of
/// the reasons differs: a simulation must not speak of "this daemon".
public enum DecisionContext: Sendable {
    case daemon
    case simulation
}

/// The one evaluator: the daemon issues with it and `policy explain` explains with it, so
/// the two can never disagree. Deny by default.
public enum PolicyEvaluator {
    public static func decide(role roleName: String, in set: PolicySet, subject: PolicySubject,
                              environment: String, phiDaemon: Bool, context: DecisionContext = .daemon) -> PolicyDecision {
        guard let role = set.roles[roleName] else {
            return PolicyDecision(allowed: false, reasons: ["no role named '\(roleName)'"])
        }
        var reasons = ["role '\(role.name)' from \(role.file)"]
        if role.phi && !phiDaemon {
            reasons.append("role '\(role.name)' is phi: it is issued only by a --phi daemon (PHI enclave)"
                + (context == .simulation ? ", and the simulated daemon is not one" : ""))
            return PolicyDecision(allowed: false, reasons: reasons)
        }
        if let environments = role.environments, !environments.contains(environment) {
            let here = context == .simulation ? "the simulated environment is" : "this daemon is"
            reasons.append("role '\(role.name)' is limited to environments \(environments.joined(separator: ", ")); \(here) '\(environment)'")
            return PolicyDecision(allowed: false, reasons: reasons)
        }
        for pattern in role.principals where matches(pattern, subject) {
            reasons.append("\(subject.label) matches principal '\(pattern)'")
            return PolicyDecision(allowed: true, reasons: reasons)
        }
        reasons.append("\(subject.label) matches none of the principals of role '\(role.name)'")
        return PolicyDecision(allowed: false, reasons: reasons)
    }

    /// The roles `subject` may assume here, sorted.
    public static func assumableRoles(in set: PolicySet, subject: PolicySubject, environment: String, phiDaemon: Bool) -> [String] {
        set.roles.keys.sorted().filter {
            decide(role: $0, in: set, subject: subject, environment: environment, phiDaemon: phiDaemon).allowed
        }
    }

    static func matches(_ pattern: PrincipalPattern, _ subject: PolicySubject) -> Bool {
        switch pattern {
        case .uid(let uid): subject.uid == uid
        case .user(let name): subject.user == name
        case .gid(let gid): subject.gid == gid || subject.groups.contains { $0.gid == gid }
        case .group(let name): subject.groups.contains { $0.name == name }
        case .unit(let name): subject.unit == name
        }
    }
}
