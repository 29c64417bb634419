import CLinux
import Glibc
import Logging
import MLCredAPI
import NIOCore
import NIOHTTP1
import NIOPosix
import Synchronization

/// Requests being answered now, for a draining shutdown.
final class InFlightCounter: Sendable {
    private let count = Atomic<Int>(0)

    func increment() { count.add(1, ordering: .relaxed) }
    func decrement() { count.subtract(1, ordering: .relaxed) }
    var value: Int { count.load(ordering: .relaxed) }
}

/// The Unix-socket server. A dedicated thread accepts connections so each can be attested on
/// its raw descriptor (SO_PEERCRED, SO_PEERGROUPS, SO_PEERPIDFD) before NIO takes it over.
public final class DaemonServer: Sendable {
    private let router: Router
    private let logger: Logger
    private let group: MultiThreadedEventLoopGroup
    private let limiter = ConnectionLimiter(maxTotal: Limits.maxConnections, maxPerUID: Limits.maxConnectionsPerUID)
    private let inFlight = InFlightCounter()
    private let refusals: RefusalLog
    private let names: NameDirectory
    private let listenFD = Mutex<Int32>(-1)
    private let socketPath: String?

    /// A server answering with `router`. `socketPath` is removed at shutdown when the daemon made it.
    public init(router: Router, names: NameDirectory, logger: Logger, socketPath: String?) {
        self.router = router
        self.names = names
        self.logger = logger
        refusals = RefusalLog(logger: logger)
        self.socketPath = socketPath
        group = MultiThreadedEventLoopGroup(numberOfThreads: max(1, System.coreCount))
    }

    /// Binds `path` with `mode` and starts accepting.
    public func start(path: String, mode: mode_t) throws {
        let fd = try SocketListener.bind(path: path, mode: mode)
        try start(listeningFD: fd)
    }

    /// Starts accepting on an already listening socket (e.g. one passed by systemd).
    public func start(listeningFD fd: Int32) throws {
        listenFD.withLock { $0 = fd }
        let thread = try AcceptThread.spawn { [self] in self.acceptLoop(fd: fd) }
        _ = thread
    }

    private func acceptLoop(fd: Int32) {
        while true {
            let client = mlc_accept_cloexec(fd)
            if client < 0 {
                switch errno {
                case EINTR, ECONNABORTED: continue
                case EMFILE, ENFILE, ENOBUFS, ENOMEM:
                    logger.warning("accept: out of descriptors or memory; backing off")
                    usleep(10_000)
                    continue
                default:
                    return  // the listener was shut down
                }
            }
            handleAccepted(client)
        }
    }

    private func handleAccepted(_ client: Int32) {
        let peer: PeerIdentity
        do {
            peer = try PeerAttestation.attest(fd: client, names: names, runGroup: router.runGroup)
        } catch {
            logger.warning("refused a connection that could not be attested: \(error)")
            close(client)
            return
        }
        let uid = peer.principal.uid
        guard limiter.acquire(uid: uid) else {
            refusals.refused(uid: uid, "connection limit reached")
            Self.refuse(client)
            if peer.pidfd >= 0 { close(peer.pidfd) }
            return
        }
        let router = self.router
        let inFlight = self.inFlight
        let limiter = self.limiter
        let bootstrap = ClientBootstrap(group: group)
            .channelInitializer { channel in
                channel.closeFuture.whenComplete { _ in
                    limiter.release(uid: uid)
                    if peer.pidfd >= 0 { close(peer.pidfd) }
                }
                return channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.configureHTTPServerPipeline(withErrorHandling: false)
                    try channel.pipeline.syncOperations.addHandler(
                        HTTPConnectionHandler(peer: peer, router: router, inFlight: inFlight))
                }
            }
        bootstrap.withConnectedSocket(client).whenFailure { [logger] error in
            logger.warning("could not serve a connection: \(error)")
        }
    }

    /// Answers 429 on a raw descriptor and closes it (the connection never reaches NIO).
    private static func refuse(_ fd: Int32) {
        let body = String(decoding: HTTPResponse.error(APIError(.tooManyConnections, "too many connections; try again later")).body.dropLast(), as: UTF8.self)
        let response = "HTTP/1.1 429 Too Many Requests\r\ncontent-type: application/json\r\ncontent-length: \(body.utf8.count + 1)\r\nconnection: close\r\n\r\n\(body)\n"
        var flags = fcntl(fd, F_GETFL)
        flags |= O_NONBLOCK
        _ = fcntl(fd, F_SETFL, flags)
        _ = response.withCString { send(fd, $0, strlen($0), Int32(MSG_NOSIGNAL)) }
        close(fd)
    }

    /// Stops accepting, waits up to `Limits.drainSeconds` for requests in flight, then stops.
    public func shutdown() async {
        let fd = listenFD.withLock { fd -> Int32 in
            let old = fd
            fd = -1
            return old
        }
        if fd >= 0 {
            Glibc.shutdown(fd, Int32(SHUT_RDWR))
            close(fd)
        }
        if let socketPath { unlink(socketPath) }
        let start = Double(time(nil))
        while inFlight.value > 0, Double(time(nil)) - start < Limits.drainSeconds {
            try? await Task.sleep(nanoseconds: 20_000_000)
        }
        try? await group.shutdownGracefully()
    }
}

/// A plain OS thread, for the blocking accept loop.
enum AcceptThread {
    final class Box: @unchecked Sendable {
        let body: () -> Void
        init(_ body: @escaping () -> Void) { self.body = body }
    }

    static func spawn(_ body: @escaping @Sendable () -> Void) throws -> pthread_t {
        var thread = pthread_t()
        let box = Unmanaged.passRetained(Box(body)).toOpaque()
        let result = pthread_create(&thread, nil, { raw in
            guard let raw else { return nil }
            let box = Unmanaged<Box>.fromOpaque(raw).takeRetainedValue()
            box.body()
            return nil
        }, box)
        guard result == 0 else {
            Unmanaged<Box>.fromOpaque(box).release()
            throw ListenerError(description: "cannot start the accept thread: \(String(cString: strerror(result)))")
        }
        pthread_detach(thread)
        return thread
    }
}
