import MLCredAPI
import MLCredPolicy
import Glibc
import Synchronization

/// The loaded policy set. A reload that fails keeps the last good set.
public final class PolicyStore: Sendable {
    private struct Loaded: Sendable {
        var set: PolicySet
        var loadedAt: Double
    }

    /// The directory policies are loaded from.
    public let directory: String
    private let current: Mutex<Loaded>

    /// Loads `directory` now; throws `PolicyLoadError` (every diagnostic) if it is invalid. A
    /// directory that does not exist yields the empty set (deny everything).
    public init(directory: String, now: Double) throws {
        self.directory = directory
        let set = try Self.loadOrEmpty(directory)
        current = Mutex(Loaded(set: set, loadedAt: now))
    }

    static func loadOrEmpty(_ directory: String) throws -> PolicySet {
        var info = stat()
        guard stat(directory, &info) == 0 else { return .empty }
        return try PolicyLoader.load(directory: directory, trustedOwners: [0, getuid()])
    }

    /// The set in force.
    public var set: PolicySet { current.withLock { $0.set } }

    /// When the set in force was loaded.
    public var loadedAt: Double { current.withLock { $0.loadedAt } }

    /// Loads the directory again; on success replaces the set, on failure keeps it and throws.
    @discardableResult
    public func reload(now: Double) throws -> PolicySet {
        let set = try Self.loadOrEmpty(directory)
        current.withLock { $0 = Loaded(set: set, loadedAt: now) }
        return set
    }

    /// The set as `GET /v1/policies` shows it.
    public func summary() -> PolicyListResponse {
        let loaded = current.withLock { $0 }
        let roles = loaded.set.roles.values.sorted { $0.name < $1.name }.map { role in
            RoleSummary(
                name: role.name, file: role.file, phi: role.phi, environments: role.environments,
                principals: role.principals.map(\.description), ttl: PolicyDuration.format(role.ttlSeconds),
                maxTTL: PolicyDuration.format(role.maxTTLSeconds),
                grants: role.grants.map { .init(name: $0.name, type: $0.type.rawValue, secret: $0.secret, environments: $0.environments) })
        }
        return PolicyListResponse(directory: directory, digest: loaded.set.digest,
                                  loadedAt: Timestamp.format(epochSeconds: loaded.loadedAt), roles: roles)
    }
}
