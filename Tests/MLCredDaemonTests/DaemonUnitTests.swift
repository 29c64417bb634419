import XCTest
@testable import MLCredBroker
@testable import MLCredDaemon
import MLCredStore

final class DaemonUnitTests: XCTestCase {
    func testOnlySystemSliceUnitsCountAsUnits() {
        XCTAssertEqual(PeerAttestation.systemUnit(cgroup: "0::/system.slice/trainer.service\n"), "trainer.service")
        XCTAssertNil(PeerAttestation.systemUnit(cgroup: "0::/user.slice/user-1000.slice/user@1000.service/app.slice/trainer.service\n"),
                     "a user manager's unit names are chosen by the user")
        XCTAssertNil(PeerAttestation.systemUnit(cgroup: "0::/\n"))
        XCTAssertNil(PeerAttestation.systemUnit(cgroup: "0::/system.slice\n"))
    }

    func testAnEmptyQueryParameterIsIgnored() {
        // Regression: "?=" once crashed the daemon.
        let request = HTTPRequest(method: "GET", uri: "/v1/audit?=&limit=5&after", authorization: nil, body: [])
        XCTAssertEqual(request.path, "/v1/audit")
        XCTAssertEqual(request.query, ["limit": "5", "after": ""])
    }

    func testQueryValuesArePercentDecodedAndARepeatedOrBrokenOneIsRefused() {
        func request(_ query: String) -> HTTPRequest {
            HTTPRequest(method: "GET", uri: "/v1/audit?" + query, authorization: nil, body: [])
        }
        // As a URL library writes them: ':' as %3A, a '-' as %2D, in either case; '+' is a plus.
        let encoded = request("since=2026-12-03T10%3a00%3A00Z&node=gpu%2D01&after_node=a+b&n%6Fde2=%C3%A9")
        XCTAssertNil(encoded.queryProblem)
        XCTAssertEqual(encoded.query, ["since": "2026-12-03T10:00:00Z", "node": "gpu-01", "after_node": "a+b", "node2": "é"])
        XCTAssertEqual(request("limit=5").query, ["limit": "5"])
        // Given twice, even through an escape, the parameter is refused, not read either way.
        for repeated in ["limit=1&limit=1000", "limit=1&l%69mit=1000", "all=true&all"] {
            XCTAssertEqual(request(repeated).queryProblem, "the query gives a parameter more than once", repeated)
            XCTAssertEqual(request(repeated).query, [:], repeated)
        }
        // An escape that is not two hex digits, or bytes that are not UTF-8.
        for broken in ["since=%", "since=%3", "since=%zz", "limit=%FF", "%=1", "node=%C3"] {
            XCTAssertEqual(request(broken).queryProblem, "the query has an invalid %-escape (two hex digits of UTF-8 each)", broken)
            XCTAssertEqual(request(broken).query, [:], broken)
        }
    }

    func testMetricsCountRequestsByRouteAndStatusWithBoundedLabels() {
        let metrics = Metrics()
        metrics.record(route: .secretPut, status: 200)
        metrics.record(route: .secretPut, status: 200)
        metrics.record(route: .tokenRevokeByAccessor, status: 404)
        metrics.record(route: nil, status: 404)
        metrics.record(route: .status, status: 299)
        let text = metrics.render(tokens: 0, leases: 0, revocationsPending: 0, initialized: true, sealed: false)
        XCTAssertTrue(text.contains(#"mlcred_requests_total{method="PUT",route="/v1/secrets/{name}",code="200"} 2"#), text)
        XCTAssertTrue(text.contains(#"mlcred_requests_total{method="POST",route="/v1/tokens/{accessor}/revoke",code="404"} 1"#), text)
        XCTAssertTrue(text.contains(#"mlcred_requests_total{method="other",route="other",code="404"} 1"#), text)
        XCTAssertTrue(text.contains(#"mlcred_requests_total{method="GET",route="/v1/status",code="other"} 1"#), text)
        let store = metrics.render(tokens: 0, leases: 0, revocationsPending: 0, initialized: true, sealed: false,
                                   commits: CommitStatistics(transactions: 3, writes: 7, busySeconds: 0.5, commitSeconds: 0.25))
        for line in ["mlcred_store_transactions_total 3", "mlcred_store_writes_total 7",
                     "mlcred_store_writer_busy_seconds_total 0.5", "mlcred_store_commit_seconds_total 0.25"] {
            XCTAssertTrue(store.contains("\n\(line)\n"), line)
        }
    }

    func testEveryRouteMatchesItsOwnTemplateAndNothingElseMatches() {
        for route in Route.allCases {
            let path = route.template.replacingOccurrences(of: "{name}", with: "warehouse")
                .replacingOccurrences(of: "{accessor}", with: "abc").replacingOccurrences(of: "{id}", with: "lease1")
            let matched = Route.match(method: route.method, path: path)
            XCTAssertEqual(matched?.route, route, path)
            // The parameter is the path's segment where the template has `{…}`.
            let at = route.template.split(separator: "/").firstIndex { $0.hasPrefix("{") }
            XCTAssertEqual(matched?.parameter, at.map { String(path.split(separator: "/")[$0]) }, path)
        }
        XCTAssertNil(Route.match(method: "GET", path: "/v1/anything/\(UUID().uuidString)"))
        XCTAssertNil(Route.match(method: "DELETE", path: "/v1/status"), "a known path with another method")
        XCTAssertNil(Route.match(method: "PUT", path: "/v1/secrets/"), "an empty name is no name")
        XCTAssertNil(Route.match(method: "GET", path: "//v1/status"))
        XCTAssertNil(Route.match(method: "GET", path: "/v2/status"))
        XCTAssertEqual(Route.match(method: "POST", path: "/v1/tokens/renew")?.route, .tokenRenew, "a literal beats a parameter")
    }

    func testAdminRoutesAreExactlyTheOnesSPECMarksAdmin() {
        let open: Set<Route> = [.status, .whoami, .tokenIssue, .tokenRenew, .tokenRevokeSelf, .credentials, .jwks]
        for route in Route.allCases {
            XCTAssertEqual(route.adminAction == nil, open.contains(route), "\(route)")
        }
        // Argon2id (vault), scans and name-service look-ups never run on an event loop.
        for route in [Route.vaultInit, .vaultUnseal, .whoami, .auditShow, .auditVerify, .tokenList, .leaseList, .policyReload] {
            XCTAssertFalse(route.runsOnEventLoop, "\(route)")
        }
    }

    func testIdentifiersAreHexTimeOrderedAndDistinct() {
        let earlier = TokenFormat.identifier(now: 1_700_000_000.000)
        let later = TokenFormat.identifier(now: 1_700_000_000.001)
        XCTAssertEqual(earlier.count, 24)
        XCTAssertTrue(earlier.allSatisfy { $0.isHexDigit && !$0.isUppercase })
        XCTAssertLessThan(earlier, later, "a later identifier sorts after an earlier one: indexes grow at their right edge")
        XCTAssertEqual(String(earlier.prefix(12)), String(UInt64(1_700_000_000_000), radix: 16).leftPadded(to: 12))
        let sameMillisecond = (0..<1000).map { _ in TokenFormat.identifier(now: 1_700_000_000) }
        XCTAssertEqual(Set(sameMillisecond).count, 1000, "48 random bits tell identifiers of one millisecond apart")
    }

    func testTokensAreRecognisableAndChecksummed() {
        let token = TokenFormat.generate()
        XCTAssertTrue(token.hasPrefix("mlc_"))
        XCTAssertEqual(token.count, 53)
        XCTAssertTrue(TokenFormat.isWellFormed(token))
        var typo = Array(token)
        typo[10] = typo[10] == "a" ? "b" : "a"
        XCTAssertFalse(TokenFormat.isWellFormed(String(typo)), "a one-character typo fails the CRC")
        XCTAssertNotEqual(TokenFormat.generate(), token)
        // Made by Python's zlib.crc32 and its own base62 (the end-to-end suite's well_formed_token).
        XCTAssertTrue(TokenFormat.isWellFormed("mlc_Pyclient000000000000000000000000000000000003aydml"))
        XCTAssertEqual(TokenFormat.check("Pyclient" + String(repeating: "0", count: 35)), "3aydml")
        // Shape: prefix, length, alphabet of both parts (byte by byte, no Unicode folding).
        let body = String(token.dropFirst(4).prefix(43)), check = String(token.suffix(6))
        XCTAssertEqual(TokenFormat.check(body), check)
        XCTAssertFalse(TokenFormat.isWellFormed("mlC_" + body + check))
        XCTAssertFalse(TokenFormat.isWellFormed("mlc_" + body + check + "0"))
        XCTAssertFalse(TokenFormat.isWellFormed("mlc_" + body.dropLast() + "-" + check))
        XCTAssertFalse(TokenFormat.isWellFormed("mlc_" + body + check.dropLast() + "é"), "a multi-byte character is not a digit")
        XCTAssertFalse(TokenFormat.isWellFormed("ｍlc_" + body + check.dropFirst(2)))
        XCTAssertEqual(CRC32.checksum(Array("123456789".utf8)), 0xCBF4_3926, "the standard CRC-32 check value")
    }

    func testBase62IsTheNumbersDigitsInBase62() {
        // Checked against arbitrary-precision arithmetic done another way: value = Σ digit·62^i.
        func value(ofBase62 text: String) -> [UInt8] {
            var bytes = [UInt8](repeating: 0, count: 40)  // big-endian, wide enough for 43 digits
            for character in text.utf8 {
                var carry = TokenFormat.alphabet.firstIndex(of: character)!
                for index in bytes.indices.reversed() {
                    let product = Int(bytes[index]) * 62 + carry
                    bytes[index] = UInt8(product & 0xFF)
                    carry = product >> 8
                }
            }
            return bytes
        }
        var cases: [[UInt8]] = [[UInt8](repeating: 0, count: 32), [UInt8](repeating: 0xFF, count: 32), [0, 0, 1], [61], [62], [0x01, 0x00]]
        for _ in 0..<200 { cases.append((0..<32).map { _ in UInt8.random(in: 0...255) }) }
        for bytes in cases {
            let text = TokenFormat.base62(bytes, width: 43)
            XCTAssertEqual(text.count, 43)
            XCTAssertEqual(Array(value(ofBase62: text).suffix(bytes.count)), bytes, "\(bytes)")
            XCTAssertTrue(value(ofBase62: text).dropLast(bytes.count).allSatisfy { $0 == 0 })
        }
        XCTAssertEqual(TokenFormat.base62([61], width: 3), "00z")
        XCTAssertEqual(TokenFormat.base62([62], width: 1), "10")
        XCTAssertEqual(TokenFormat.base62([0, 0], width: 2), "00")
        // Around the five-digit chunks the division works in (62⁵ = 0x369B13E0).
        XCTAssertEqual(TokenFormat.base62([0x36, 0x9B, 0x13, 0xE0], width: 0), "100000")
        XCTAssertEqual(TokenFormat.base62([0x36, 0x9B, 0x13, 0xDF], width: 0), "zzzzz")
        XCTAssertEqual(TokenFormat.base62([0x0B, 0xA5, 0xCA, 0x53, 0x92, 0xCB, 0x04, 0x00], width: 0), "10000000000", "62¹⁰")
        XCTAssertEqual(TokenFormat.base62([], width: 2), "00")
        // Any length, not only whole 32-bit limbs.
        for length in 1...40 {
            let bytes = (0..<length).map { _ in UInt8.random(in: 0...255) }
            let text = TokenFormat.base62(bytes, width: 0)
            let value = value(ofBase62: text.leftPadded(to: 43))
            XCTAssertEqual(Array(value.suffix(bytes.count)), bytes, "\(bytes)")
            XCTAssertTrue(value.dropLast(bytes.count).allSatisfy { $0 == 0 })
            XCTAssertTrue(text.isEmpty || text.first != "0", "no leading zero without a width: \(text)")
        }
    }
}

extension String {
    func leftPadded(to width: Int) -> String { String(repeating: "0", count: max(0, width - count)) + self }
}
