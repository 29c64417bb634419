import Logging
import MLCredAPI
import NIOCore
import NIOHTTP1

/// Serves HTTP/1.1 on one attested connection: enforces header and body limits and the request
/// deadline, hands complete requests to the router, writes its answers.
final class HTTPConnectionHandler: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart

    private enum State {
        case idle
        case receiving(HTTPRequestHead, [UInt8])
        case responding
        case closing
    }

    private let peer: PeerIdentity
    private let router: Router
    private let inFlight: InFlightCounter
    private var state = State.idle
    private var deadline: Scheduled<Void>?
    private var taskExecutor: EventLoopTaskExecutor?

    init(peer: PeerIdentity, router: Router, inFlight: InFlightCounter) {
        self.peer = peer
        self.router = router
        self.inFlight = inFlight
    }

    func handlerAdded(context: ChannelHandlerContext) {
        armDeadline(context: context)
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        deadline?.cancel()
    }

    private func armDeadline(context: ChannelHandlerContext) {
        deadline?.cancel()
        deadline = context.eventLoop.assumeIsolated().scheduleTask(in: .seconds(Limits.requestDeadlineSeconds)) {
            context.close(promise: nil)
        }
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let head):
            guard case .idle = state else { return }
            var headerBytes = head.uri.utf8.count
            for (name, value) in head.headers { headerBytes += name.utf8.count + value.utf8.count + 4 }
            if headerBytes > Limits.maxHeaderBytes {
                reject(context: context, head: head, .headersTooLarge, "request headers exceed \(Limits.maxHeaderBytes / 1024) KiB")
                return
            }
            if let lengthText = head.headers.first(name: "content-length") {
                guard let length = Int(lengthText), length >= 0 else {
                    reject(context: context, head: head, .malformedHTTP, "invalid Content-Length")
                    return
                }
                if length > Limits.maxBodyBytes {
                    // Refused before a byte of the body is read (also under Expect: 100-continue).
                    reject(context: context, head: head, .bodyTooLarge, "request body exceeds \(Limits.maxBodyBytes / 1024) KiB")
                    return
                }
            }
            if head.headers.first(name: "expect")?.lowercased() == "100-continue" {
                context.writeAndFlush(wrapOutboundOut(.head(HTTPResponseHead(version: head.version, status: .continue))), promise: nil)
            }
            state = .receiving(head, [])
        case .body(var chunk):
            guard case .receiving(let head, var body) = state else { return }
            if body.count + chunk.readableBytes > Limits.maxBodyBytes {
                reject(context: context, head: head, .bodyTooLarge, "request body exceeds \(Limits.maxBodyBytes / 1024) KiB")
                return
            }
            state = .responding  // drop the old array's reference so the append does not copy
            body.append(contentsOf: chunk.readBytes(length: chunk.readableBytes) ?? [])
            state = .receiving(head, body)
        case .end:
            guard case .receiving(let head, let body) = state else { return }
            deadline?.cancel()
            state = .responding
            dispatch(context: context, head: head, body: body)
        }
    }

    private func dispatch(context: ChannelHandlerContext, head: HTTPRequestHead, body: [UInt8]) {
        let request = HTTPRequest(
            method: head.method.rawValue, uri: head.uri, authorization: head.headers.first(name: "authorization"), body: body)
        let keepAlive = head.isKeepAlive
        guard let matched = Route.match(method: request.method, path: request.path) else {
            // No route: answered here, without a task.
            write(context: context, version: head.version, response: router.unmatched(request), keepAlive: keepAlive)
            return
        }
        let router = self.router
        let peer = self.peer
        inFlight.increment()
        let promise = context.eventLoop.makePromise(of: HTTPResponse.self)
        let work: @Sendable () async -> Void = {
            promise.succeed(await router.handle(request, route: matched.route, parameter: matched.parameter, peer: peer))
        }
        if matched.route.runsOnEventLoop {
            // Hot routes stay on this event loop: no hop to the cooperative pool and back.
            Task(executorPreference: executor(context.eventLoop), operation: work)
        } else {
            Task(operation: work)
        }
        promise.futureResult.assumeIsolated().whenSuccess { response in
            self.inFlight.decrement()
            self.write(context: context, version: head.version, response: response, keepAlive: keepAlive)
        }
    }

    /// The task executor of this connection's event loop, made on first use.
    private func executor(_ eventLoop: any EventLoop) -> EventLoopTaskExecutor {
        if let taskExecutor { return taskExecutor }
        let made = EventLoopTaskExecutor(eventLoop: eventLoop)
        taskExecutor = made
        return made
    }

    private func reject(context: ChannelHandlerContext, head: HTTPRequestHead, _ reason: APIErrorReason, _ message: String) {
        state = .closing
        deadline?.cancel()
        write(context: context, version: head.version, response: .error(reason, message), keepAlive: false)
    }

    private func write(context: ChannelHandlerContext, version: HTTPVersion, response: HTTPResponse, keepAlive: Bool) {
        var headers = HTTPHeaders()
        headers.add(name: "content-type", value: response.contentType)
        headers.add(name: "content-length", value: String(response.body.count))
        headers.add(name: "connection", value: keepAlive ? "keep-alive" : "close")
        headers.add(name: "cache-control", value: "no-store")
        let status = HTTPResponseStatus(statusCode: response.status)
        context.write(wrapOutboundOut(.head(HTTPResponseHead(version: version, status: status, headers: headers))), promise: nil)
        var buffer = context.channel.allocator.buffer(capacity: response.body.count)
        buffer.writeBytes(response.body)
        context.write(wrapOutboundOut(.body(.byteBuffer(buffer))), promise: nil)
        // The state changes before `.end` is written: NIO's pipelining handler delivers the next
        // queued request synchronously inside that write, and it must find the handler idle.
        if keepAlive {
            state = .idle
            armDeadline(context: context)
            context.writeAndFlush(wrapOutboundOut(.end(nil)), promise: nil)
        } else {
            state = .closing
            context.writeAndFlush(wrapOutboundOut(.end(nil))).assumeIsolated().whenComplete { _ in context.close(promise: nil) }
        }
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        var answerable = false
        switch state {
        case .idle, .receiving: answerable = true
        case .responding, .closing: answerable = false
        }
        guard let parseError = error as? HTTPParserError, answerable else {
            context.close(promise: nil)
            return
        }
        // Unparseable input still gets the SPEC §9 error shape, then the connection closes.
        state = .closing
        deadline?.cancel()
        let response: HTTPResponse = parseError == .headerOverflow
            ? .error(.headersTooLarge, "request headers exceed \(Limits.maxHeaderBytes / 1024) KiB")
            : .error(.malformedHTTP, "malformed HTTP request")
        write(context: context, version: .http1_1, response: response, keepAlive: false)
    }
}
