import Glibc
import Logging
import MLCredAPI
import MLCredBroker
import MLCredVault
import Synchronization

/// Ends what must end without being asked: tokens past their expiry, tokens bound to a
/// `mlcred run` process that is gone (even SIGKILLed), within `interval` seconds; leases past
/// their expiry, and revocations still owed to a provider (retried with backoff).
public final class Sweeper: Sendable {
    /// How often the sweeper looks.
    public static let intervalSeconds = 1.0
    /// How often scheduled rotations are looked for.
    static let rotationCheckSeconds = 5.0

    private let broker: Broker
    private let logger: Logger
    /// accessor → the process the token is bound to.
    private let watched = Mutex<[String: ProcessWatcher]>([:])
    private let principal = Principal.daemon(uid: getuid(), gid: getgid(), pid: getpid())

    /// How long ended tokens and leases are kept (the audit log keeps their history).
    private let retentionSeconds: Double
    /// The default `--retention`.
    public static let defaultRetentionSeconds = 7.0 * 86_400

    /// This node in a fleet (SPEC §12): its timeout and start; nil for a single node.
    public struct FleetMembership: Sendable {
        public var timeout: Double
        public var startedAt: Double

        public init(timeout: Double, startedAt: Double) {
            self.timeout = timeout
            self.startedAt = startedAt
        }
    }

    private let fleet: FleetMembership?

    public init(broker: Broker, logger: Logger, retentionSeconds: Double = Sweeper.defaultRetentionSeconds, fleet: FleetMembership? = nil) {
        self.broker = broker
        self.logger = logger
        self.retentionSeconds = retentionSeconds
        self.fleet = fleet
    }

    /// Revokes `accessor` when `process` exits; the sweeper stops `process` once the token has ended.
    public func watch(accessor: String, process: ProcessWatcher) {
        watched.withLock { $0.updateValue(process, forKey: accessor)?.stop() }
    }

    /// Re-attaches to tokens bound before a restart; revokes those whose process is gone.
    public func adoptBoundTokens() async {
        guard let tokens = try? await broker.boundTokens() else { return }
        for token in tokens {
            if let start = token.boundStartTime, let process = ProcessWatcher(pid: token.pid, startTime: start) {
                watch(accessor: token.accessor, process: process)
            } else {
                _ = try? await broker.revoke(accessor: token.accessor, principal: principal,
                                             reason: "bound process \(token.pid) exited while the daemon was down", settleNow: false)
            }
        }
    }

    /// Runs until the task is cancelled. Leases have a loop of their own: a provider that is slow
    /// to answer must not delay the revocation of tokens whose process exited.
    public func run() async {
        await withTaskGroup(of: Void.self) { group in
            group.addTask {
                while !Task.isCancelled {
                    await self.sweepOnce()
                    try? await Task.sleep(nanoseconds: UInt64(Self.intervalSeconds * 1e9))
                }
            }
            group.addTask {
                while !Task.isCancelled {
                    _ = await self.broker.sweepLeases(principal: self.principal)
                    try? await Task.sleep(nanoseconds: UInt64(Self.intervalSeconds * 1e9))
                }
            }
            group.addTask {
                // Scheduled provider rotations (`rotate_every`): looked for every few seconds.
                while !Task.isCancelled {
                    let rotated = await self.broker.rotateDueSecrets(principal: self.principal)
                    if rotated > 0 { self.logger.notice("rotated secrets on schedule", metadata: ["count": "\(rotated)"]) }
                    try? await Task.sleep(nanoseconds: UInt64(Self.rotationCheckSeconds * 1e9))
                }
            }
            if let fleet = self.fleet {
                group.addTask { await self.runFleetDuties(fleet) }
            }
            group.addTask {
                // Every 10 minutes (sooner for a short retention); a backlog goes a batch per second.
                let pause = min(max(self.retentionSeconds / 2, Self.intervalSeconds), 600)
                while !Task.isCancelled {
                    let gone = await self.broker.purgeEnded(retention: self.retentionSeconds, principal: self.principal)
                    if gone > 0 { self.logger.info("purged ended tokens and leases", metadata: ["count": "\(gone)"]) }
                    try? await Task.sleep(nanoseconds: UInt64((gone >= 5000 ? Self.intervalSeconds : pause) * 1e9))
                }
            }
        }
    }

    /// A fleet node's duties, every quarter of its timeout (SPEC §12): heartbeat its row; pick up
    /// a vault another node initialized; take over the leases of nodes silent past their timeout.
    /// Takeover waits until this node itself has beaten without failure for a whole timeout: after
    /// a store outage every node's row looks stale, and none may judge the others before they
    /// all had the chance to beat again.
    func runFleetDuties(_ fleet: FleetMembership) async {
        let period = max(fleet.timeout / 4, 0.25)
        var healthySince: Double?
        var reportedVaultProblem: String?
        while !Task.isCancelled {
            if let problem = await broker.refreshVault(), problem != reportedVaultProblem {
                logger.error("cannot serve the fleet's vault", metadata: ["reason": "\(problem)"])
                reportedVaultProblem = problem
            }
            let now = WallClock.now()
            if await !broker.store.keepNodeName() {
                logger.critical("another mlcredd took this node's name on the store while this one was cut off: stop one of them")
            }
            do {
                try await broker.heartbeat(startedAt: fleet.startedAt, timeout: fleet.timeout)
                if healthySince == nil {
                    healthySince = now
                    logger.notice("heartbeat written to the store")
                }
            } catch {
                if healthySince != nil { logger.warning("heartbeat failed: the store is unreachable", metadata: ["error": "\(error)"]) }
                healthySince = nil
            }
            if let since = healthySince, now - since >= fleet.timeout {
                let taken = await broker.takeOverSilentNodes(principal: principal, healthyFor: now - since)
                if taken > 0 { logger.notice("took over leases of silent nodes", metadata: ["count": "\(taken)"]) }
            }
            try? await Task.sleep(nanoseconds: UInt64(period * 1e9))
        }
    }

    func sweepOnce() async {
        let exited: [String] = watched.withLock { map in
            let gone = map.filter { $0.value.hasExited }
            for (accessor, process) in gone {
                process.stop()
                map[accessor] = nil
            }
            return Array(gone.keys)
        }
        for accessor in exited {
            do {
                try await broker.revoke(accessor: accessor, principal: principal, reason: "bound process exited", settleNow: false)
            } catch {
                logger.error("could not revoke a token whose process exited", metadata: ["accessor": "\(accessor)", "error": "\(error)"])
            }
        }
        await broker.flushMergedDenials()
        let expired = await broker.expireDue(principal: principal)
        if expired > 0 { logger.info("expired tokens", metadata: ["count": "\(expired)"]) }
        // Stop watching tokens that ended another way.
        let live = Set(((try? await broker.boundTokens()) ?? []).map(\.accessor))
        watched.withLock { map in
            for (accessor, process) in map where !live.contains(accessor) {
                process.stop()
                map[accessor] = nil
            }
        }
    }
}
