import ArgumentParser
import MLCredAPI
import MLCredClient

/// The `mlcred` command line. Every command names itself (`commandName`): ArgumentParser's
/// default derives the name by reflection, a few conformance scans of the whole static
/// binary at every start, which `mlcred run` pays for in its overhead.
struct MLCred: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "mlcred",
        abstract: "Short-lived, policy-scoped credentials for machine-learning jobs.",
        discussion: """
            Exit codes: 0 ok, 1 error, 2 usage, 3 denied, 4 sealed or uninitialized, 5
            daemon unreachable. The daemon's socket: --socket, else $MLCRED_SOCKET, else
            /run/mlcred/mlcred.sock, else $XDG_RUNTIME_DIR/mlcred.sock, else
            $XDG_DATA_HOME/mlcred/mlcred.sock, else ~/.local/share/mlcred/mlcred.sock (the
            first that exists).

            --socket PATH, and --json for commands that print data, go before or after the
            command: 'mlcred --socket S status', 'mlcred status --socket S' and
            'MLCRED_SOCKET=S mlcred status' are the same.
            """,
        version: mlcredVersion,
        subcommands: [Run.self, Env.self, TokenCommand.self, CredentialProcess.self, Whoami.self, Status.self, Jwks.self, EmergencyCommand.self,
                      VaultCommand.self, SecretCommand.self, PolicyCommand.self, LeaseCommand.self, AuditCommand.self, FleetCommand.self])
}

/// Options every daemon-facing verb takes.
struct ConnectionOptions: ParsableArguments {
    @Option(help: "Path of mlcredd's Unix socket (also accepted before the command).")
    var socket: String?

    /// A client for the resolved socket.
    func client() throws -> MLCredClient {
        try MLCredClient(socketPath: socket)
    }

    /// A client that sends nothing before the kernel says the listener runs as root, the caller,
    /// or the daemon user (`DaemonTrust`): for verbs that carry a passphrase or a secret value.
    func clientForSecrets() throws -> MLCredClient {
        let client = try MLCredClient(socketPath: socket)
        client.trustedDaemon = DaemonTrust.forCaller()
        try client.verifyTrustedDaemon()
        return client
    }
}

/// `--json` for verbs that print data.
struct OutputOptions: ParsableArguments {
    @Flag(help: "Print JSON instead of text (also accepted before the command).")
    var json = false
}

struct Status: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "status",
        abstract: "Show the daemon's state: initialized, sealed, environment, phi, version.",
        discussion: "Exits 0 whenever the daemon answers, whatever its state.")

    @OptionGroup var connection: ConnectionOptions
    @OptionGroup var output: OutputOptions

    func run() throws {
        let status: StatusResponse = try connection.client().call("GET", "/v1/status")
        if output.json { return try Terminal.printJSON(status) }
        for emergency in status.emergencies ?? [] {
            Terminal.out("EMERGENCY: role '\(VisibleText.escaped(emergency.role))' is open until \(emergency.until): \(VisibleText.escaped(emergency.reason))\n")
        }
        Terminal.out("""
            initialized: \(status.initialized ? "yes" : "no")
            sealed:      \(status.sealed ? "yes" : "no")
            environment: \(status.environment)
            phi:         \(status.phi ? "yes" : "no")
            version:     \(status.version)

            """)
        if let progress = status.unsealProgress {
            Terminal.out("unseal shares: \(progress.received) of \(progress.threshold) brought (\(progress.shares) exist)\n")
        }
        // What to do next, where there is something to do (a new user's first `status`).
        if !status.initialized {
            Terminal.out("next: an admin initializes the vault: mlcred vault init --passphrase-stdin (or --key-file FILE, or --shares N --threshold K)\n")
        } else if status.sealed, status.unsealProgress == nil {
            Terminal.out("next: an admin unseals it: mlcred vault unseal (mlcred vault unseal --help lists the ways)\n")
        }
        if let generation = status.keyGeneration {
            let pending = status.reencryptPending ?? 0
            Terminal.out("key generation: \(generation)\(pending > 0 ? " (re-encrypting: \(Plural.count(pending, "stored record")) left)" : "")\n")
        }
    }
}

struct Whoami: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "whoami", abstract: "Show who you are as the daemon sees you (from the kernel, not from you).")

    @OptionGroup var connection: ConnectionOptions
    @OptionGroup var output: OutputOptions

    func run() throws {
        let answer: WhoamiResponse = try connection.client().call("GET", "/v1/whoami")
        if output.json { return try Terminal.printJSON(answer) }
        let principal = answer.principal
        Terminal.out("""
            user:        \(principal.user ?? "?") (uid \(principal.uid), gid \(principal.gid))
            pid:         \(principal.pid)
            groups:      \(answer.groupNames.isEmpty ? "-" : answer.groupNames.joined(separator: ", "))
            unit:        \(principal.unit ?? "-")
            admin:       \(answer.admin ? "yes" : "no")
            environment: \(answer.environment)
            roles:       \(answer.roles.isEmpty ? "- (none here)" : answer.roles.joined(separator: ", "))

            """)
        if let emergency = answer.emergencyRoles, !emergency.isEmpty {
            Terminal.out("emergency:   \(emergency.joined(separator: ", ")) (only while an emergency is open: 'mlcred emergency list')\n")
        }
    }
}
