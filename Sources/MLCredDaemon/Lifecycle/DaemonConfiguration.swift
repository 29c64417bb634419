import Glibc
import MLCredBroker
import MLCredStore

/// Everything `mlcredd` needs to run, resolved from its flags.
public struct DaemonConfiguration: Sendable {
    public var stateDirectory: String
    public var socketPath: String
    public var policiesDirectory: String
    public var environment: String
    public var phi: Bool
    public var adminGroup: String
    /// The group the installed `mlcred` is setgid to (`--run-group`): phi tokens go only to callers with it.
    public var runGroup: String = "mlcred-run"
    public var unsealKeyFile: String?
    public var socketMode: mode_t
    /// How long ended tokens and leases are kept before the sweeper deletes them.
    public var retentionSeconds: Double
    /// The free-space reserve (`--min-free`).
    public var minimumFree: FreeSpaceReserve.Size
    /// `--store`: the PostgreSQL URL a fleet shares (SPEC §12); nil for `--store sqlite`.
    public var storeURL: String?
    /// `--store-password-file`: the PostgreSQL password (else `$CREDENTIALS_DIRECTORY/store-password`).
    public var storePasswordFile: String?
    /// `--node`: this node's name (default the host name).
    public var node: String = "local"
    /// `--node-timeout`: silence after which the other nodes take this node's leases over.
    public var nodeTimeoutSeconds: Double = 60
    /// The most live tokens one uid may hold on this node (`--max-tokens-per-uid`; 0: no limit).
    public var maxTokensPerUID: Int = DaemonConfiguration.defaultMaxTokensPerUID
    public static let defaultMaxTokensPerUID = Broker.defaultMaxTokensPerUID

    public init(stateDirectory: String, socketPath: String, policiesDirectory: String, environment: String, phi: Bool,
                adminGroup: String, unsealKeyFile: String?, socketMode: mode_t, retentionSeconds: Double = Sweeper.defaultRetentionSeconds,
                minimumFree: FreeSpaceReserve.Size = .automatic) {
        self.stateDirectory = stateDirectory
        self.socketPath = socketPath
        self.policiesDirectory = policiesDirectory
        self.environment = environment
        self.phi = phi
        self.adminGroup = adminGroup
        self.unsealKeyFile = unsealKeyFile
        self.socketMode = socketMode
        self.retentionSeconds = retentionSeconds
        self.minimumFree = minimumFree
    }
}
