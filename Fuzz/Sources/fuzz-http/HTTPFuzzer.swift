import Dispatch
import FuzzSupport
import Logging
import MLCredAPI
import MLCredBroker
import MLCredCrypto
@testable import MLCredDaemon
import MLCredStore
import MLCredVault
import NIOCore
import NIOEmbedded
import NIOHTTP1

#if canImport(Glibc)
import Glibc
#endif

/// The daemon's request decoding, on raw bytes as a connection delivers them (pipelined
/// requests, any framing, any garbage):
/// 1. NIO's HTTP/1.1 decoder splits them into requests; each complete one becomes the daemon's
///    `HTTPRequest` (path and query), goes through the route table (`Route.match`) and has its
///    body decoded as its route decodes it (`Router.decode`: `JSONParser` + `JSONObjectReader`
///    for the hot routes, Codable for the others; every hot body type when no route matches).
/// 2. The same bytes go through the daemon's own pipeline (`configureHTTPServerPipeline` +
///    `HTTPConnectionHandler`) on an `EmbeddedChannel`: header and body limits, `Content-Length`,
///    `Expect`, keep-alive, pipelining, unparseable input, up to the first request that names a
///    route: `RouteStop` closes the connection there. (The handler hands such a request to the
///    router on a task, which needs a live event loop and writes the audit; those paths are
///    covered by the end-to-end tests.)
/// 3. The body's text, as a JSON string, goes through `JSONWriter` and back through `JSONParser`.
/// Properties: nothing traps; a matched route has the request's method; every answer the handler
/// writes to a request no route names is the SPEC §9 error object; JSON strings round-trip
/// byte for byte.
let router: Router = {
    do {
        try Sodium.initialize()
        let directory = temporaryDirectory(prefix: "mlcred-fuzz-http")
        mkdir(directory + "/policies", 0o700)
        let store = try Store(path: directory + "/mlcred.db")
        let vault = try blocking {
            try await Vault(store: store, settings: .init(environment: "dev", phi: false), kdfParameters: .unsafeTestOnly)
        }
        let broker = Broker(vault: vault, store: store, policies: try PolicyStore(directory: directory + "/policies", now: 0))
        var logger = Logger(label: "fuzz-http")
        logger.logLevel = .critical
        return Router(vault: vault, broker: broker, sweeper: Sweeper(broker: broker, logger: logger), store: store,
                      names: NameDirectory(), adminGroup: nil, metrics: Metrics(), logger: logger)
    } catch {
        fatalError("cannot set up the router: \(error)")
    }
}()

/// A caller that is not an admin (admin checks write the audit).
let peer = PeerIdentity(principal: Principal(uid: 4242, gid: 4242, user: "fuzz", pid: 1, groups: [], unit: nil), pidfd: -1)

/// The result of `blocking`'s task, read after the semaphore says it is written.
final class ResultBox<T>: @unchecked Sendable {
    var result: Result<T, Error>?
}

/// Runs `work` to completion from synchronous code (set-up only).
func blocking<T: Sendable>(_ work: @escaping @Sendable () async throws -> T) throws -> T {
    let box = ResultBox<T>()
    let done = DispatchSemaphore(value: 0)
    Task {
        do { box.result = .success(try await work()) } catch { box.result = .failure(error) }
        done.signal()
    }
    done.wait()
    return try box.result!.get()
}

/// Collects what NIO's decoder makes of the bytes: requests, complete or not.
final class RequestCollector: ChannelInboundHandler {
    typealias InboundIn = HTTPServerRequestPart

    struct Request {
        var head: HTTPRequestHead
        var body: [UInt8] = []
        var complete = false
    }

    var requests: [Request] = []

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let head):
            requests.append(Request(head: head))
        case .body(var chunk):
            guard !requests.isEmpty else { return }
            // Bounded as the handler bounds it: past the limit it answers 413 and reads no more.
            if requests[requests.count - 1].body.count + chunk.readableBytes <= Limits.maxBodyBytes {
                requests[requests.count - 1].body += chunk.readBytes(length: chunk.readableBytes) ?? []
            }
        case .end:
            if !requests.isEmpty { requests[requests.count - 1].complete = true }
        }
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        context.close(promise: nil)
    }
}

/// Closes the connection at the head of a request that names a route, before the handler sees
/// it: the handler would answer it on a task (see above). What the handler sees is what the
/// daemon's handler sees of the same bytes up to there.
final class RouteStop: ChannelInboundHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias InboundOut = HTTPServerRequestPart

    private var stopped = false

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard !stopped else { return }
        if case .head(let head) = unwrapInboundIn(data),
           Route.match(method: head.method.rawValue, path: HTTPRequest(method: head.method.rawValue, uri: head.uri, authorization: nil, body: []).path) != nil {
            stopped = true
            context.close(promise: nil)
            return
        }
        context.fireChannelRead(data)
    }
}

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzHTTP(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    let input = FuzzInput(data, size)
    let bytes = input.bytes
    // Reads of varying size, as a socket delivers them: a request's parts can straddle two.
    let readSize = 1 + bytes.count % 61 * 7

    // 1. The decoder alone, then the daemon's decoding of each complete request.
    let collector = RequestCollector()
    let decoding = EmbeddedChannel()
    try! decoding.pipeline.syncOperations.configureHTTPServerPipeline(withPipeliningAssistance: false, withErrorHandling: false)
    try! decoding.pipeline.syncOperations.addHandler(collector)
    feed(decoding, bytes, readSize: readSize)
    finish(decoding)

    for request in collector.requests where request.complete {
        let head = request.head
        let parsed = HTTPRequest(method: head.method.rawValue, uri: head.uri, authorization: head.headers.first(name: "authorization"),
                                 body: request.body)
        guard !parsed.path.contains("?"), !parsed.query.keys.contains("") else {
            propertyFailed("uri \(head.uri.debugDescription) read as path \(parsed.path.debugDescription), query \(parsed.query)")
        }
        if let match = Route.match(method: parsed.method, path: parsed.path) {
            guard match.route.method == parsed.method else { propertyFailed("\(parsed.method) \(parsed.path) matched \(match.route)") }
            decodeBody(of: match.route, parsed)
        } else {
            _ = try? router.decode(TokenRequest.self, parsed)
            _ = try? router.decode(RenewRequest.self, parsed)
            _ = try? router.decode(CredentialsRequest.self, parsed)
        }
    }

    // 2. The daemon's pipeline and handler, up to the first request that would reach the router.
    let channel = EmbeddedChannel()
    try! channel.pipeline.syncOperations.configureHTTPServerPipeline(withErrorHandling: false)
    try! channel.pipeline.syncOperations.addHandler(RouteStop())
    try! channel.pipeline.syncOperations.addHandler(HTTPConnectionHandler(peer: peer, router: router, inFlight: InFlightCounter()))
    try! channel.connect(to: SocketAddress(unixDomainSocketPath: "/nowhere")).wait()
    feed(channel, bytes, readSize: readSize)
    checkAnswers(channel)
    finish(channel)

    // 3. JSON strings: written by JSONWriter, read back by JSONParser, unchanged.
    let text = String(decoding: bytes.prefix(4096), as: UTF8.self)
    var writer = JSONWriter()
    writer.beginObject()
    writer.field("k", text)
    writer.endObject()
    guard case .object(let object)? = try? JSONParser.parse(writer.bytes), case .string(let back)? = object["k"],
          Array(back.utf8) == Array(text.utf8) else {
        propertyFailed("the JSON string \(text.debugDescription) does not survive JSONWriter and JSONParser")
    }
    return 0
}

/// Closes `channel` if it is open and runs what the close queued: an `EmbeddedChannel` removes
/// its handlers in a task on its loop, and one closed from inside (the handler's `close`) throws
/// `alreadyClosed` from `finish` before running it. Without this every such connection leaked
/// its pipeline (about 13 KB a run).
func finish(_ channel: EmbeddedChannel) {
    _ = try? channel.finish()
    channel.embeddedEventLoop.run()
}

func feed(_ channel: EmbeddedChannel, _ bytes: [UInt8], readSize: Int) {
    var start = 0
    while start < bytes.count, channel.isActive {
        let end = min(bytes.count, start + readSize)
        do {
            try channel.writeInbound(ByteBuffer(bytes: bytes[start..<end]))
        } catch {
            return  // the decoder's error: the connection is answered and closed
        }
        start = end
    }
}

/// The body as the route reads it (Router.decode), and what the route does next with it.
func decodeBody(of route: Route, _ request: HTTPRequest) {
    switch route {
    case .tokenIssue: _ = try? router.decode(TokenRequest.self, request)
    case .tokenRenew: _ = try? router.decode(RenewRequest.self, request)
    case .credentials: _ = try? router.decode(CredentialsRequest.self, request)
    case .policyExplain: _ = try? router.decode(ExplainRequest.self, request)
    case .vaultInit, .vaultUnseal:
        if let body = try? router.decode(VaultKeyRequest.self, request), let key = body.key { _ = try? Router.decodeKey(key) }
    case .secretPut: _ = try? router.decode(SecretPutRequest.self, request)
    case .secretGenerate: _ = try? router.decode(SecretGenerateRequest.self, request)
    default: break
    }
}

/// Every answer written is an HTTP/1.1 head, then (but for 100 Continue) an error object.
func checkAnswers(_ channel: EmbeddedChannel) {
    var expectBody = false
    while let part = try? channel.readOutbound(as: IOData.self) {
        guard case .byteBuffer(let buffer) = part, buffer.readableBytes > 0 else { continue }
        let bytes = Array(buffer.readableBytesView)
        if expectBody {
            guard (try? APIJSON.decode(APIErrorBody.self, from: bytes)) != nil else {
                propertyFailed("an answer without the error object: \(String(decoding: bytes, as: UTF8.self).debugDescription)")
            }
            expectBody = false
        } else {
            guard bytes.starts(with: Array("HTTP/".utf8)) else {
                propertyFailed("not an HTTP answer head: \(String(decoding: bytes, as: UTF8.self).debugDescription)")
            }
            // "HTTP/x.y 100 Continue" has no body.
            expectBody = !bytes.dropFirst(8).starts(with: Array(" 100 ".utf8))
        }
    }
}
