import ArgumentParser
import Glibc
import Logging
import MLCredAPI
import MLCredDaemon
import MLCredPolicy
import MLCredStore

/// `mlcredd`: argument parsing and wiring; the daemon itself lives in MLCredDaemon.
@main
struct MLCredDaemonCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "mlcredd",
        abstract: "The mlcred daemon: holds the vault and issues short-lived credentials over a Unix socket.",
        discussion: """
            Examples:
              mlcredd --dev                                  # a personal daemon under ~/.local/share/mlcred
              mlcredd --environment prod --phi --unseal-key-file unseal.key
            """,
        version: mlcredVersion)

    @Option(help: "State directory holding mlcred.db (default /var/lib/mlcred; with --dev $XDG_DATA_HOME/mlcred, else ~/.local/share/mlcred).")
    var stateDir: String?

    @Option(help: "Unix socket to serve (default /run/mlcred/mlcred.sock; with --dev $XDG_RUNTIME_DIR/mlcred.sock, else mlcred.sock in the state directory).")
    var socket: String?

    @Option(help: "Policy directory (default /etc/mlcred/policies; with --dev ./policies).")
    var policies: String?

    @Option(help: "Environment label recorded in the vault at init (dev, staging, prod, ...).")
    var environment: String = "dev"

    @Flag(help: "Run as a PHI enclave: recorded at init; phi roles are issued only here.")
    var phi = false

    @Option(help: "Members of this group are admins (besides uid 0 and the daemon's uid).")
    var adminGroup: String = "mlcred-admin"

    @Option(help: "The group the installed mlcred is setgid to: phi tokens and credentials go only to callers running with it (mlcred run), untraced.")
    var runGroup: String = "mlcred-run"

    @Option(help: "Unseal at start with this 32-byte key file (relative paths are looked up in $CREDENTIALS_DIRECTORY).")
    var unsealKeyFile: String?

    @Option(help: "File mode of the socket, in octal.")
    var socketMode: String = "0660"

    @Flag(help: "Developer mode: per-user state, socket and ./policies; works without root.")
    var dev = false

    @Option(help: "Log level: trace, debug, info, notice, warning, error, critical.")
    var logLevel: String = "info"

    @Option(help: "How long tokens and leases that ended are kept before they are deleted, e.g. 7d or 12h (the audit log keeps their history).")
    var retention: String = "7d"

    @Option(help: ArgumentHelp("Free space kept on the state file system: below it new tokens and secrets get 507 store_full, while revocations, renewals and admin audit still write. A size (64M, 1G, 0 = off) or 'auto'.",
                               discussion: "auto: the smaller of 64 MiB and 5% of the file system."))
    var minFree: String = "auto"

    @Option(help: ArgumentHelp("The most live tokens one uid may hold on this node; beyond it a token request gets 429 token_limit_reached (audited). 0: no limit.",
                               valueName: "n"))
    var maxTokensPerUid: Int = DaemonConfiguration.defaultMaxTokensPerUID

    @Option(help: ArgumentHelp("Where the state lives: 'sqlite' (STATE_DIR/mlcred.db) or a PostgreSQL URL shared by a fleet of nodes: postgres://USER@HOST:PORT[,HOST:PORT...]/DB?sslmode=verify-full&sslrootcert=CA (no password in it).",
                               valueName: "sqlite|url"))
    var store: String = "sqlite"

    @Option(help: ArgumentHelp("File holding the PostgreSQL store's password (default $CREDENTIALS_DIRECTORY/store-password); never argv or the environment.",
                               valueName: "file"))
    var storePasswordFile: String?

    @Option(help: "This node's name in a fleet, on every token, lease and audit record (default: the host name).")
    var node: String?

    @Option(help: "Silence after which the other nodes of the fleet revoke this node's leases, e.g. 60s or 2m.")
    var nodeTimeout: String = "60s"

    func validate() throws {
        guard Logger.Level(rawValue: logLevel) != nil else {
            throw ValidationError("unknown --log-level '\(logLevel)'")
        }
        guard let mode = UInt32(socketMode, radix: 8), mode <= 0o777 else {
            throw ValidationError("--socket-mode must be octal, e.g. 0660")
        }
        guard PolicyDuration.parse(retention) != nil else {
            throw ValidationError("--retention must be a duration such as 7d, 12h or 30m")
        }
        guard maxTokensPerUid >= 0 else { throw ValidationError("--max-tokens-per-uid must be 0 (no limit) or more") }
        guard FreeSpaceReserve.parse(minFree) != nil else {
            throw ValidationError("--min-free must be a size such as 64M, 1G or 0, or 'auto'")
        }
        guard let timeout = PolicyDuration.parse(nodeTimeout), timeout >= 1 else {
            throw ValidationError("--node-timeout must be a duration of at least 1s, such as 60s or 2m")
        }
        if let node, !NodeName.isValid(node) {
            throw ValidationError("--node: \(NodeName.requirement)")
        }
        if store != StoreKind.sqlite.rawValue {
            do {
                _ = try PostgresStoreConfiguration(url: store, password: nil)
            } catch StoreError.openFailed(let message) {
                throw ValidationError("--store: \(message)")
            } catch {
                throw ValidationError("--store: \(error)")
            }
        }
        guard !environment.isEmpty, environment.utf8.allSatisfy({ $0 == 45 || $0 == 95 || ($0 >= 48 && $0 <= 57) || ($0 >= 97 && $0 <= 122) }) else {
            throw ValidationError("--environment must be lower-case letters, digits, '-' or '_'")
        }
    }

    @Option(help: ArgumentHelp("Restore a snapshot made by 'mlcred vault backup' into the state directory, which must hold no database yet, then exit.",
                               valueName: "file"))
    var restore: String?

    @Option(help: ArgumentHelp("Copy a single node's SQLite state (its mlcred.db, daemon stopped) into the --store PostgreSQL store as node --node, check it on both sides, then exit.",
                               valueName: "file"))
    var importSqlite: String?

    func run() async throws {
        if let importSqlite {
            do {
                let summary = try Daemon.importSQLite(resolve(), from: importSqlite)
                let counts = ["secrets", "tokens", "leases", "audit"].map { "\(summary.rows[$0] ?? 0) \($0)" }.joined(separator: ", ")
                let head = summary.auditHead.map { "audit head seq \($0.seq) mac \($0.mac)" } ?? "no audit head"
                print("imported \(importSqlite) as node \(resolve().node): \(counts); \(head)")
                print("start mlcredd with the same --store and --node, unseal, and check that 'mlcred audit verify' passes with this head for node \(resolve().node)")
                return
            } catch let error as StartupError {
                FileHandleStderr.write("mlcredd: error: \(error.description)\n")
                throw ExitCode(1)
            }
        }
        if let restore {
            let configuration = resolve()
            do {
                let summary = try Daemon.restore(snapshot: restore, stateDirectory: configuration.stateDirectory)
                let head = summary.head.map { "audit head seq \($0.seq) mac \($0.mac)" } ?? "no audit head"
                print("restored \(restore) into \(configuration.stateDirectory): \(Plural.count(Int(summary.records), "audit record")); \(head)")
                print("start mlcredd as usual, unseal, and check that 'mlcred audit verify' passes and that record \(summary.head?.seq ?? 0) of 'mlcred audit show --json' carries this mac")
                return
            } catch let error as StartupError {
                FileHandleStderr.write("mlcredd: error: \(error.description)\n")
                throw ExitCode(1)
            }
        }
        let level = Logger.Level(rawValue: logLevel) ?? .info
        LoggingSystem.bootstrap { label in
            var handler = StreamLogHandler.standardError(label: label)
            handler.logLevel = level
            return handler
        }
        let logger = Logger(label: "mlcredd")
        let configuration = resolve()
        do {
            try await Daemon.run(configuration, logger: logger)
        } catch let error as StartupError {
            FileHandleStderr.write("mlcredd: error: \(error.description)\n")
            throw ExitCode(1)
        }
    }

    private func resolve() -> DaemonConfiguration {
        func env(_ name: String) -> String? {
            guard let value = getenv(name) else { return nil }
            let text = String(cString: value)
            return text.isEmpty ? nil : text
        }
        var state = "/var/lib/mlcred"
        var socketPath = "/run/mlcred/mlcred.sock"
        var policyDir = "/etc/mlcred/policies"
        if dev {
            let home = env("HOME") ?? "/tmp"
            state = (env("XDG_DATA_HOME") ?? home + "/.local/share") + "/mlcred"
            socketPath = env("XDG_RUNTIME_DIR").map { $0 + "/mlcred.sock" } ?? state + "/mlcred.sock"
            policyDir = "./policies"
        }
        var configuration = DaemonConfiguration(
            stateDirectory: stateDir ?? state, socketPath: socket ?? socketPath, policiesDirectory: policies ?? policyDir,
            environment: environment, phi: phi, adminGroup: adminGroup, unsealKeyFile: unsealKeyFile,
            socketMode: mode_t(UInt32(socketMode, radix: 8) ?? 0o660),
            retentionSeconds: Double(PolicyDuration.parse(retention) ?? Int(Sweeper.defaultRetentionSeconds)),
            minimumFree: FreeSpaceReserve.parse(minFree) ?? .automatic)
        configuration.runGroup = runGroup
        configuration.storeURL = store == StoreKind.sqlite.rawValue ? nil : store
        configuration.storePasswordFile = storePasswordFile
        configuration.node = node ?? Self.hostName()
        configuration.nodeTimeoutSeconds = Double(PolicyDuration.parse(nodeTimeout) ?? 60)
        configuration.maxTokensPerUID = maxTokensPerUid
        return configuration
    }

    /// The host name, as a node name (its first label if the whole name does not fit).
    static func hostName() -> String {
        var buffer = [CChar](repeating: 0, count: 256)
        guard gethostname(&buffer, buffer.count) == 0 else { return "local" }
        let name = String(cString: buffer)
        if NodeName.isValid(name) { return name }
        let first = String(name.prefix { $0 != "." })
        return NodeName.isValid(first) ? first : "local"
    }
}

enum FileHandleStderr {
    static func write(_ text: String) {
        _ = text.withCString { Glibc.write(2, $0, strlen($0)) }
    }
}
