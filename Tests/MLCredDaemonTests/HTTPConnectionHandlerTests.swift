import Foundation
import Logging
import MLCredAPI
import MLCredBroker
import MLCredCrypto
import MLCredStore
import MLCredVault
import NIOCore
import NIOEmbedded
import NIOHTTP1
import XCTest
@testable import MLCredDaemon

/// The HTTP handler on an `EmbeddedChannel`: limits, the error shape and keep-alive, without a
/// socket (SPEC §9). Requests that reach a route are covered end to end.
final class HTTPConnectionHandlerTests: XCTestCase {
    private var router: Router?
    private var directory = ""

    override func setUp() async throws {
        try Sodium.initialize()
        directory = NSTemporaryDirectory() + "mlcred-http-" + UUID().uuidString
        try FileManager.default.createDirectory(atPath: directory + "/policies", withIntermediateDirectories: true)
        let store = try Store(path: directory + "/mlcred.db")
        let vault = try await Vault(store: store, settings: .init(environment: "dev", phi: false), kdfParameters: .unsafeTestOnly)
        let broker = Broker(vault: vault, store: store, policies: try PolicyStore(directory: directory + "/policies", now: 0))
        let logger = Logger(label: "test")
        router = Router(vault: vault, broker: broker, sweeper: Sweeper(broker: broker, logger: logger), store: store,
                        names: NameDirectory(), adminGroup: nil, metrics: Metrics(), logger: logger)
    }

    override func tearDown() {
        try? FileManager.default.removeItem(atPath: directory)
    }

    private func makeChannel() throws -> EmbeddedChannel {
        let channel = EmbeddedChannel()
        try channel.pipeline.syncOperations.configureHTTPServerPipeline(withErrorHandling: false)
        let peer = PeerIdentity(principal: Principal(uid: 4242, gid: 4242, user: "user", pid: 1, groups: [], unit: nil), pidfd: -1)
        try channel.pipeline.syncOperations.addHandler(HTTPConnectionHandler(peer: peer, router: try XCTUnwrap(router), inFlight: InFlightCounter()))
        try channel.connect(to: SocketAddress(unixDomainSocketPath: "/nowhere")).wait()
        return channel
    }

    /// Everything the handler wrote so far, as text.
    private func written(_ channel: EmbeddedChannel) throws -> String {
        var text = ""
        while let part = try channel.readOutbound(as: IOData.self) {
            if case .byteBuffer(let buffer) = part { text += String(buffer: buffer) }
        }
        return text
    }

    private func send(_ channel: EmbeddedChannel, _ text: String) throws {
        try channel.writeInbound(ByteBuffer(string: text))
    }

    /// The `error` object of the last answer in `text`.
    private func error(in text: String) throws -> APIErrorBody.Detail {
        let body = try XCTUnwrap(text.components(separatedBy: "\r\n\r\n").last)
        return try APIJSON.decode(APIErrorBody.self, from: Array(body.utf8)).error
    }

    func testAnUnknownRouteIsAnsweredAtOnceWithItsReasonAndTheConnectionStaysOpen() throws {
        let channel = try makeChannel()
        try send(channel, "GET /v1/nothing-here HTTP/1.1\r\nHost: x\r\n\r\n")
        let text = try written(channel)
        XCTAssertTrue(text.hasPrefix("HTTP/1.1 404 Not Found\r\n"), text)
        XCTAssertEqual(try error(in: text).reason, .unknownRoute)
        XCTAssertTrue(text.lowercased().contains("connection: keep-alive"), text)
        XCTAssertTrue(channel.isActive)
        try send(channel, "GET /v2/status HTTP/1.1\r\nHost: x\r\n\r\n")
        XCTAssertTrue(try written(channel).hasPrefix("HTTP/1.1 404 "), "a second request on the same connection is answered")
    }

    func testABodyOverTheLimitIsRefusedFromContentLengthBeforeAByteOfItIsRead() throws {
        let channel = try makeChannel()
        try send(channel, "POST /v1/tokens HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: \(Limits.maxBodyBytes + 1)\r\n\r\n")
        let text = try written(channel)
        XCTAssertFalse(text.contains("100 Continue"), "no invitation to send a body that will be refused")
        XCTAssertTrue(text.hasPrefix("HTTP/1.1 413 "), text)
        XCTAssertEqual(try error(in: text).reason, .bodyTooLarge)
        XCTAssertFalse(channel.isActive, "the connection closes")
    }

    func testABodyThatGrowsPastTheLimitWithoutContentLengthIsRefused() throws {
        let channel = try makeChannel()
        try send(channel, "POST /v1/tokens HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n")
        let chunk = String(repeating: "a", count: 16 * 1024)
        for _ in 0..<5 where channel.isActive {
            try send(channel, String(chunk.utf8.count, radix: 16) + "\r\n" + chunk + "\r\n")
        }
        let text = try written(channel)
        XCTAssertTrue(text.hasPrefix("HTTP/1.1 413 "), text)
        XCTAssertEqual(try error(in: text).reason, .bodyTooLarge)
    }

    func testHeadersOverTheLimitAreRefused() throws {
        let channel = try makeChannel()
        let big = String(repeating: "h", count: Limits.maxHeaderBytes)
        try send(channel, "GET /v1/status HTTP/1.1\r\nHost: x\r\nX-Big: \(big)\r\n\r\n")
        let text = try written(channel)
        XCTAssertTrue(text.hasPrefix("HTTP/1.1 413 "), text)
        XCTAssertEqual(try error(in: text).reason, .headersTooLarge)
        XCTAssertFalse(channel.isActive)
    }

    func testUnparseableInputGetsTheErrorShapeAndTheConnectionCloses() throws {
        let channel = try makeChannel()
        try? send(channel, "THIS IS NOT HTTP\0\r\n\r\n")
        let text = try written(channel)
        XCTAssertTrue(text.hasPrefix("HTTP/1.1 400 "), text)
        XCTAssertEqual(try error(in: text).reason, .malformedHTTP)
        XCTAssertFalse(channel.isActive)
    }

    func testExpectContinueIsInvitedWhenTheBodyFits() throws {
        let channel = try makeChannel()
        try send(channel, "POST /v1/nothing HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 2\r\n\r\n")
        XCTAssertTrue(try written(channel).hasPrefix("HTTP/1.1 100 Continue\r\n"))
        try send(channel, "{}")
        XCTAssertTrue(try written(channel).hasPrefix("HTTP/1.1 404 "))
    }
}
