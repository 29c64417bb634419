import CLinux
import Dispatch
import Glibc
import Logging
import MLCredAPI
import MLCredBroker
import MLCredCrypto
import MLCredPolicy
import MLCredStore
import MLCredVault
import Synchronization

/// Everything `mlcredd` needs to run, resolved from its flags.
public struct DaemonConfiguration: Sendable {
    public var stateDirectory: String
    public var socketPath: String
    public var policiesDirectory: String
    public var environment: String
    public var phi: Bool
    public var adminGroup: String
    public var unsealKeyFile: String?
    public var socketMode: mode_t
    /// How long ended tokens and leases are kept before the sweeper deletes them.
    public var retentionSeconds: Double

    public init(stateDirectory: String, socketPath: String, policiesDirectory: String, environment: String, phi: Bool,
                adminGroup: String, unsealKeyFile: String?, socketMode: mode_t, retentionSeconds: Double = Sweeper.defaultRetentionSeconds) {
        self.stateDirectory = stateDirectory
        self.socketPath = socketPath
        self.policiesDirectory = policiesDirectory
        self.environment = environment
        self.phi = phi
        self.adminGroup = adminGroup
        self.unsealKeyFile = unsealKeyFile
        self.socketMode = socketMode
        self.retentionSeconds = retentionSeconds
    }
}

/// A start-up failure with a message for the operator.
public struct StartupError: Error, CustomStringConvertible {
    public let description: String

    public init(_ description: String) { self.description = description }
}

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
        let store: Store
        do {
            store = try Store(path: databasePath)
        } catch {
            throw StartupError("\(error)")
        }
        for suffix in ["", "-wal", "-shm"] { chmod(databasePath + suffix, 0o600) }

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
        try? await vault.audit(AuditEvent(principal: Principal.daemon(uid: getuid(), gid: getgid(), pid: getpid()), action: .policyLoad,
                                          result: .allowed, reason: "loaded \(policies.set.roles.count) roles from \(configuration.policiesDirectory), digest \(policies.set.digest)"))
        let broker = Broker(vault: vault, store: store, policies: policies)
        let sweeper = Sweeper(broker: broker, logger: logger, retentionSeconds: configuration.retentionSeconds)
        await sweeper.adoptBoundTokens()
        let sweeping = Task { await sweeper.run() }

        let adminGroup = NameDirectory.groupID(named: configuration.adminGroup)
        if adminGroup == nil {
            logger.warning("admin group '\(configuration.adminGroup)' does not exist: only uid 0 and the daemon's uid are admins")
        }
        let names = NameDirectory()
        let router = Router(vault: vault, broker: broker, sweeper: sweeper, store: store, names: names, adminGroup: adminGroup,
                            metrics: Metrics(), logger: logger)
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
        ])

        notifier.notify("READY=1\nSTATUS=serving \(passed == nil ? configuration.socketPath : "the socket systemd passed")")
        let watchdog = Task { await notifier.runWatchdog() }
        await SignalWaiter.waitForTermination(logger: logger) {
            Task {
                notifier.notify("RELOADING=1")
                _ = try? await router.reloadPolicies(principal: Principal.daemon(uid: getuid(), gid: getgid(), pid: getpid()))
                notifier.notify("READY=1")
            }
        }
        notifier.notify("STOPPING=1")
        watchdog.cancel()
        sweeping.cancel()
        logger.notice("shutting down: draining requests in flight")
        await server.shutdown()
        logger.notice("stopped")
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

/// One daemon per state directory. Threat: a second daemon on the same database would write
/// audit records outside the running daemon's chain and race its writer.
enum StateLock {
    /// Held open for the life of the process; the kernel releases the lock when it exits.
    nonisolated(unsafe) static var descriptor: Int32 = -1

    static func acquire(directory: String) throws {
        let path = directory + "/mlcredd.lock"
        let fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0o600)
        guard fd >= 0 else { throw StartupError("cannot open \(path): \(String(cString: strerror(errno)))") }
        guard flock(fd, LOCK_EX | LOCK_NB) == 0 else {
            var buffer = [UInt8](repeating: 0, count: 32)
            let count = read(fd, &buffer, buffer.count)
            let holder = count > 0 ? String(decoding: buffer.prefix(count), as: UTF8.self).trimmingCharacters(in: [" ", "\n"]) : "?"
            close(fd)
            throw StartupError("another mlcredd (pid \(holder)) already uses the state directory \(directory); stop it first")
        }
        ftruncate(fd, 0)
        let pid = "\(getpid())\n"
        _ = pid.withCString { write(fd, $0, strlen($0)) }
        descriptor = fd
    }
}

/// Reads a 32-byte key file: raw bytes, or base64 text of 32 bytes.
public enum KeyFile {
    public static func read(path: String) -> [UInt8]? {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        var buffer = [UInt8](repeating: 0, count: 256)
        let count = Glibc.read(fd, &buffer, buffer.count)
        guard count > 0 else { return nil }
        let bytes = Array(buffer.prefix(count))
        if bytes.count == 32 { return bytes }
        let text = String(decoding: bytes, as: UTF8.self).trimmingCharacters(in: [" ", "\n", "\r", "\t"])
        if let decoded = Base64.decode(text), decoded.count == 32 { return decoded }
        return nil
    }
}

/// Process-wide protections applied before any key exists.
enum ProcessHardening {
    static func apply(logger: Logger) {
        // Threat: key material in a core file or read through ptrace/proc by same-uid code.
        if mlc_set_not_dumpable() != 0 {
            logger.warning("could not disable core dumps and ptrace attach (PR_SET_DUMPABLE)")
        }
        var noCore = rlimit(rlim_cur: 0, rlim_max: 0)
        if setrlimit(Int32(RLIMIT_CORE.rawValue), &noCore) != 0 {
            logger.warning("could not set RLIMIT_CORE to 0")
        }
        // Files the daemon creates (database, WAL, socket before its chmod) are private.
        umask(0o077)
        // Each connection holds a socket and a pidfd: allow as many descriptors as permitted.
        var files = rlimit()
        if getrlimit(Int32(RLIMIT_NOFILE.rawValue), &files) == 0, files.rlim_cur < files.rlim_max {
            files.rlim_cur = files.rlim_max
            setrlimit(Int32(RLIMIT_NOFILE.rawValue), &files)
        }
        signal(SIGPIPE, SIG_IGN)
    }
}

/// Waits for SIGTERM or SIGINT; runs `onHangup` for each SIGHUP.
enum SignalWaiter {
    static func waitForTermination(logger: Logger, onHangup: @escaping @Sendable () -> Void) async {
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            let queue = DispatchQueue(label: "mlcred.signals")
            let once = OnceBox(continuation)
            var sources: [DispatchSourceSignal] = []
            for signalNumber in [SIGTERM, SIGINT] {
                signal(signalNumber, SIG_IGN)
                let source = DispatchSource.makeSignalSource(signal: signalNumber, queue: queue)
                source.setEventHandler { once.resume() }
                source.resume()
                sources.append(source)
            }
            signal(SIGHUP, SIG_IGN)
            let hangup = DispatchSource.makeSignalSource(signal: SIGHUP, queue: queue)
            hangup.setEventHandler {
                logger.notice("SIGHUP: reloading policies")
                onHangup()
            }
            hangup.resume()
            sources.append(hangup)
            SignalSources.keep(sources)
        }
    }
}

/// Keeps dispatch signal sources alive for the life of the process.
enum SignalSources {
    nonisolated(unsafe) static var retained: [DispatchSourceSignal] = []

    static func keep(_ sources: [DispatchSourceSignal]) { retained.append(contentsOf: sources) }
}

/// Resumes a continuation at most once.
final class OnceBox: Sendable {
    private let continuation: Mutex<CheckedContinuation<Void, Never>?>

    init(_ continuation: CheckedContinuation<Void, Never>) { self.continuation = Mutex(continuation) }

    func resume() {
        continuation.withLock { pending in
            pending?.resume()
            pending = nil
        }
    }
}
