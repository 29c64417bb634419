import Glibc
import Logging
import MLCredAPI
import MLCredBroker
import MLCredCrypto
import MLCredPolicy
import MLCredStore
import MLCredVault

/// The daemon's lifecycle: harden the process, open the state, serve, drain on SIGTERM.
public enum Daemon {
    /// Environment variable that switches Argon2id to libsodium's minimum cost. UNSAFE; tests only.
    public static let unsafeTestKDFVariable = "MLCRED_UNSAFE_TEST_KDF"

    /// Runs until SIGTERM or SIGINT; returns after draining.
    public static func run(_ configuration: DaemonConfiguration, logger: Logger) async throws {
        ProcessHardening.apply(logger: logger)
        try Sodium.initialize()
        try prepareStateDirectory(configuration.stateDirectory)
        try StateLock.acquire(directory: configuration.stateDirectory)

        let databasePath = configuration.stateDirectory + "/" + Store.fileName
        let location: StoreLocation
        if let url = configuration.storeURL {
            let password = try StorePassword.read(file: configuration.storePasswordFile)
            do {
                location = .postgres(try PostgresStoreConfiguration(url: url, password: password))
            } catch {
                throw StartupError("--store: \(error)")
            }
        } else {
            location = .sqlite(path: databasePath)
        }
        let store: Store
        do {
            store = try Store(location: location, stateDirectory: configuration.stateDirectory, node: configuration.node,
                              reserve: configuration.minimumFree)
        } catch {
            throw StartupError("\(error)")
        }
        if !store.isShared {
            for suffix in ["", "-wal", "-shm"] { chmod(databasePath + suffix, 0o600) }
        }
        do {
            try store.claimNodeName()
        } catch {
            throw StartupError("\(error)")
        }
        let startedAt = WallClock.now()
        let fleet = Sweeper.FleetMembership(timeout: configuration.nodeTimeoutSeconds, startedAt: startedAt)

        var kdf = PasswordKDFParameters.moderate
        if getenv(unsafeTestKDFVariable).map({ String(cString: $0) }) == "1" {
            kdf = .unsafeTestOnly
            logger.warning("\(unsafeTestKDFVariable)=1: passphrases of a vault initialized now are protected by the MINIMUM Argon2id cost. Tests only.")
        }
        let vault: Vault
        do {
            vault = try await Vault(
                store: store, settings: .init(environment: configuration.environment, phi: configuration.phi), kdfParameters: kdf)
        } catch let error as VaultSettingsMismatch {
            throw StartupError(error.description)
        }

        if let keyFile = configuration.unsealKeyFile {
            try await unsealAtStart(vault: vault, keyFile: keyFile, logger: logger)
        }

        let policies: PolicyStore
        do {
            policies = try PolicyStore(directory: configuration.policiesDirectory, now: WallClock.now())
        } catch let error as PolicyLoadError {
            throw StartupError("invalid policies in \(configuration.policiesDirectory):\n" + error.description)
        }
        logger.notice("policies loaded", metadata: [
            "directory": "\(configuration.policiesDirectory)", "roles": "\(policies.set.roles.count)", "digest": "\(policies.set.digest)",
        ])
        if policies.set.roles.isEmpty {
            // Not an error (policies may be deployed after the daemon), but never silent: every
            // role request is denied until a reload (SIGHUP or `mlcred policy reload`) finds some.
            let missing = access(configuration.policiesDirectory, F_OK) != 0
            logger.warning("\(missing ? "the policy directory does not exist" : "the policy directory holds no role"): every role is denied until policies are added and reloaded (SIGHUP or 'mlcred policy reload')",
                           metadata: ["directory": "\(configuration.policiesDirectory)"])
        }
        try? await vault.audit(AuditEvent(principal: Principal.daemon(uid: getuid(), gid: getgid(), pid: getpid()), action: .policyLoad,
                                          result: .allowed, reason: "loaded \(Plural.count(policies.set.roles.count, "role")) from \(configuration.policiesDirectory), digest \(policies.set.digest)"))
        let broker = Broker(vault: vault, store: store, policies: policies, maxTokensPerUID: configuration.maxTokensPerUID)
        let sweeper = Sweeper(broker: broker, logger: logger, retentionSeconds: configuration.retentionSeconds,
                              fleet: store.isShared ? fleet : nil)
        await sweeper.adoptBoundTokens()
        let sweeping = Task { await sweeper.run() }

        let adminGroup = NameDirectory.groupID(named: configuration.adminGroup)
        if adminGroup == nil {
            logger.warning("admin group '\(configuration.adminGroup)' does not exist: only uid 0 and the daemon's uid are admins")
        }
        let names = NameDirectory()
        let runGroup = NameDirectory.groupID(named: configuration.runGroup)
        if runGroup == nil {
            logger.warning("run group '\(configuration.runGroup)' does not exist: no phi token or credential can be issued (create the group, as the sysusers snippet does, and install mlcred setgid to it)")
        }
        let metrics = Metrics()
        let router = Router(vault: vault, broker: broker, sweeper: sweeper, store: store, names: names, adminGroup: adminGroup,
                            adminGroupName: configuration.adminGroup, runGroup: runGroup,
                            metrics: metrics, logger: logger, fleet: fleet)
        let notifier = SystemdNotifier()
        let passed = try SystemdActivation.passedSocket()
        // A socket systemd passed stays systemd's: the daemon neither binds nor removes it.
        let server = DaemonServer(router: router, names: names, logger: logger, socketPath: passed == nil ? configuration.socketPath : nil)
        do {
            if let passed {
                try server.start(listeningFD: passed)
            } else {
                try server.start(path: configuration.socketPath, mode: configuration.socketMode)
            }
        } catch {
            throw StartupError("\(error)")
        }
        let state = await vault.status
        logger.notice("mlcredd \(mlcredVersion) listening", metadata: [
            "socket": "\(passed == nil ? configuration.socketPath : "fd 3 (systemd)")", "environment": "\(configuration.environment)",
            "phi": "\(configuration.phi)", "initialized": "\(state.initialized)", "sealed": "\(state.sealed)",
            "node": "\(configuration.node)", "store": "\(store.kind.rawValue)",
        ])

        notifier.notify("READY=1\nSTATUS=serving \(passed == nil ? configuration.socketPath : "the socket systemd passed")")
        let watchdog = Task { await notifier.runWatchdog() }
        let trimming = Task { await IdleTrim.run(metrics: metrics, logger: logger) }
        await SignalWaiter.waitForTermination(logger: logger) {
            Task {
                notifier.notify("RELOADING=1")
                _ = try? await router.reloadPolicies(principal: Principal.daemon(uid: getuid(), gid: getgid(), pid: getpid()))
                notifier.notify("READY=1")
            }
        }
        notifier.notify("STOPPING=1")
        watchdog.cancel()
        trimming.cancel()
        sweeping.cancel()
        logger.notice("shutting down: draining requests in flight")
        await server.shutdown()
        await broker.flushMergedDenials(all: true)
        logger.notice("stopped")
    }

    /// `mlcredd --restore FILE` (SPEC §13): checks the snapshot (integrity, an initialized vault,
    /// a gap-free audit log) and copies it into the state directory, which must hold no database.
    /// Takes the state lock: no daemon may run on that directory meanwhile.
    public static func restore(snapshot: String, stateDirectory: String) throws -> SnapshotSummary {
        try prepareStateDirectory(stateDirectory)
        try StateLock.acquire(directory: stateDirectory)
        do {
            return try Store.restore(snapshot: snapshot, into: stateDirectory + "/" + Store.fileName)
        } catch {
            throw StartupError("cannot restore \(snapshot): \(error)")
        }
    }

    /// `mlcredd --store URL --import-sqlite FILE` (SPEC §12, moving up): copies a single node's
    /// SQLite state into the fleet store as node `configuration.node`, checked on both sides.
    /// Takes the state lock of the SQLite file's directory: no daemon may run on it meanwhile.
    public static func importSQLite(_ configuration: DaemonConfiguration, from path: String) throws -> ImportSummary {
        guard let url = configuration.storeURL else {
            throw StartupError("--import-sqlite copies into a fleet store: give --store postgres://... (and --node, the name the node keeps)")
        }
        guard access(path, R_OK) == 0 else { throw StartupError("cannot read \(path): \(String(cString: strerror(errno)))") }
        let directory = path.lastIndex(of: "/").map { String(path[..<$0]) } ?? "."
        try StateLock.acquire(directory: directory.isEmpty ? "/" : directory)
        let password = try StorePassword.read(file: configuration.storePasswordFile)
        do {
            let store = try Store(location: .postgres(try PostgresStoreConfiguration(url: url, password: password)),
                                  stateDirectory: directory, node: configuration.node, reserve: .bytes(0))
            return try store.importSQLite(path: path)
        } catch {
            throw StartupError("import of \(path) failed, nothing was copied: \(error)")
        }
    }

    /// State directory 0700, owned by the daemon's uid.
    static func prepareStateDirectory(_ path: String) throws {
        var partial = ""
        for component in path.split(separator: "/") {
            partial += "/" + component
            var info = stat()
            if stat(partial, &info) != 0 {
                guard mkdir(partial, 0o700) == 0 || errno == EEXIST else {
                    throw StartupError("cannot create the state directory \(partial): \(String(cString: strerror(errno)))")
                }
            }
        }
        var info = stat()
        guard stat(path, &info) == 0, (info.st_mode & S_IFMT) == S_IFDIR else {
            throw StartupError("the state directory \(path) is not a directory")
        }
        guard info.st_uid == getuid() else {
            throw StartupError("the state directory \(path) belongs to uid \(info.st_uid), not to the daemon's uid \(getuid())")
        }
        if info.st_mode & 0o777 != 0o700 { chmod(path, 0o700) }
    }

    static func unsealAtStart(vault: Vault, keyFile: String, logger: Logger) async throws {
        var path = keyFile
        if !keyFile.hasPrefix("/"), let directory = getenv("CREDENTIALS_DIRECTORY") {
            path = String(cString: directory) + "/" + keyFile
        }
        guard let key = KeyFile.read(path: path) else {
            var info = stat()
            if stat(path, &info) != 0 {
                let reason = String(cString: strerror(errno))
                let lookedUp = keyFile.hasPrefix("/") ? ""
                    : getenv("CREDENTIALS_DIRECTORY") == nil ? " (relative to the daemon's working directory: $CREDENTIALS_DIRECTORY, where systemd puts credentials, is not set)"
                    : " (looked up in $CREDENTIALS_DIRECTORY)"
                throw StartupError("cannot read the unseal key file \(path): \(reason)\(lookedUp)")
            }
            throw StartupError("cannot read the unseal key file \(path): it must hold 32 bytes (raw or base64)")
        }
        let principal = Principal.daemon(uid: getuid(), gid: getgid(), pid: getpid())
        do {
            try await vault.unseal(passphrase: nil, keyFileKey: key, principal: principal)
            logger.notice("unsealed with the key file")
        } catch let error as APIError {
            throw StartupError("unseal with \(path) failed: \(error.message)")
        }
    }
}
