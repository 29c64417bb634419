import Foundation
import MLCredAPI
import MLCredCrypto
@testable import MLCredPolicy
@testable import MLCredProviders
import XCTest

/// The jwt provider keeps each signer's key in guarded memory between calls: a rotated key is
/// picked up at once, and sealing wipes what it kept.
final class JWTProviderTests: XCTestCase {
    override func setUpWithError() throws {
        try Sodium.initialize()
    }

    func signer(_ pair: (publicKey: [UInt8], secretKey: SecureBytes), kid: String) throws -> OpenedSecret {
        let privateKey = try pair.secretKey.withUnsafeBytes { Base64.encode(Array($0.bindMemory(to: UInt8.self))) }
        return OpenedSecret(name: "tracking", type: "jwt-signer", phi: false,
                            fields: ["kid": kid, "issuer": "mlcred", "public_key": Base64.encodeURL(pair.publicKey), "private_key": privateKey])
    }

    func context() throws -> IssuanceContext {
        let (role, problems) = PolicyLoader.parseRole(source: """
            name = "train"
            principals = ["uid:0"]
            [[grant]]
            secret = "tracking"
            type = "jwt"
            audience = "mlflow"
            """, file: "train.toml", directory: PolicyDirectory(path: "/nonexistent"))
        let loaded = try XCTUnwrap(role, "\(problems)")
        return IssuanceContext(role: loaded, grant: loaded.grants[0], subject: "alice", accessor: "acc", now: 1_800_000_000,
                               expiresAt: 1_800_003_600)
    }

    /// Verifies `jwt`'s signature with `publicKey`.
    func verifies(_ jwt: String, _ publicKey: [UInt8]) -> Bool {
        let parts = jwt.split(separator: ".").map(String.init)
        guard parts.count == 3 else { return false }
        var text = parts[2].replacingOccurrences(of: "-", with: "+").replacingOccurrences(of: "_", with: "/")
        while text.count % 4 != 0 { text += "=" }
        guard let signature = Base64.decode(text) else { return false }
        return Ed25519.verify(signature, message: Array((parts[0] + "." + parts[1]).utf8), publicKey: publicKey)
    }

    func testSignsWithTheStoredKeyFollowsARotationAndStillSignsAfterForgetting() async throws {
        let provider = JWTProvider()
        let first = try Ed25519.generateKeyPair()
        let second = try Ed25519.generateKeyPair()
        let context = try context()
        let a = try await provider.issue(secret: try signer(first, kid: "k1"), context: context).env["MLCRED_JWT"] ?? ""
        let b = try await provider.issue(secret: try signer(first, kid: "k1"), context: context).env["MLCRED_JWT"] ?? ""
        XCTAssertTrue(verifies(a, first.publicKey) && verifies(b, first.publicKey))
        // The secret now holds another key under the same name: it signs at once.
        let rotated = try await provider.issue(secret: try signer(second, kid: "k2"), context: context).env["MLCRED_JWT"] ?? ""
        XCTAssertTrue(verifies(rotated, second.publicKey))
        XCTAssertFalse(verifies(rotated, first.publicKey))
        // Sealing wipes the kept keys; the next unsealed request copies the key again.
        provider.forgetKeys()
        let after = try await provider.issue(secret: try signer(second, kid: "k2"), context: context).env["MLCRED_JWT"] ?? ""
        XCTAssertTrue(verifies(after, second.publicKey))
    }

    func testBase64EncodingMatchesFoundationForEveryTailLength() {
        for count in 0..<70 {
            let bytes = Sodium.randomBytes(count)
            let reference = Data(bytes).base64EncodedString()
            XCTAssertEqual(Base64.encode(bytes), reference, "\(count) bytes")
            let url = reference.replacingOccurrences(of: "+", with: "-").replacingOccurrences(of: "/", with: "_")
                .replacingOccurrences(of: "=", with: "")
            XCTAssertEqual(Base64.encodeURL(bytes), url, "\(count) bytes")
            XCTAssertEqual(Base64.decode(Base64.encode(bytes)), bytes)
        }
        XCTAssertEqual(Base64.encodeURL([0xfb, 0xff]), "-_8")
    }

    func testPrincipalJSONWrittenByHandIsWhatJSONEncoderWrites() throws {
        let principals = [
            Principal(uid: 1000, gid: 1000, user: "alice", pid: 42, groups: [27, 1000], unit: nil),
            Principal(uid: 0, gid: 0, user: nil, pid: 1, groups: [], unit: "train@1.service"),
            Principal(uid: 7, gid: 8, user: "q\"uo\\te/ü\u{1}\n\t\r\u{1f}", pid: Int32.max, groups: [UInt32.max], unit: "a\u{7f}b"),
        ]
        for principal in principals {
            XCTAssertEqual(principal.json, String(decoding: try APIJSON.encode(principal), as: UTF8.self))
            XCTAssertEqual(try APIJSON.decode(Principal.self, from: Array(principal.json.utf8)), principal)
        }
    }

    func testKeptKeysAreComparedWholeAndWipedByForget() throws {
        let keys = SigningKeys()
        let bytes = Sodium.randomBytes(Ed25519.secretKeyLength)
        let kept = try keys.key(secret: "s", bytes: bytes)
        XCTAssertTrue(try keys.key(secret: "s", bytes: bytes) === kept, "the same key is reused, not copied again")
        var other = bytes
        other[other.count - 1] ^= 1
        XCTAssertFalse(try keys.key(secret: "s", bytes: other) === kept, "one changed byte is another key")
        XCTAssertFalse(kept.isWiped, "a replaced key is left to its last user, not wiped under it")
        let current = try keys.key(secret: "s", bytes: other)
        keys.wipeAll()
        XCTAssertTrue(current.isWiped)
        XCTAssertFalse(try keys.key(secret: "s", bytes: other) === current)
    }

    func testClaimsWrittenDirectlyAreWhatJSONEncoderWrites() throws {
        let claims: [String: PolicyValue] = [
            "sub": .string("alice"), "exp": .integer(1_800_003_600), "neg": .integer(-7), "ok": .bool(true), "no": .bool(false),
            "quote": .string("q\"uo\\te/ü\u{1}\n\t\r\u{1f}\u{7f}"),
            "list": .array([.string("a"), .integer(2), .bool(false), .array([]), .table(["z": .string("1"), "a": .string("2")])]),
            "nested": .table(["b": .table(["c": .array([.string("x")])]), "a": .integer(0)]),
            "empty": .table([:]),
        ]
        var writer = JSONWriter()
        PolicyValue.table(claims).write(to: &writer)
        XCTAssertEqual(String(decoding: writer.bytes, as: UTF8.self), String(decoding: try APIJSON.encode(claims), as: UTF8.self))
        // Numbers with a fraction: the same value, read back (the two format some doubles differently).
        for number in [0.5, -1.25, 1e-7, 3.0e20, 123456.789] {
            var one = JSONWriter()
            PolicyValue.table(["n": .double(number)]).write(to: &one)
            guard case .object(let object) = try JSONParser.parse(one.bytes), case .number(let back)? = object["n"] else {
                return XCTFail("\(number) was written as \(String(decoding: one.bytes, as: UTF8.self))")
            }
            XCTAssertEqual(back, number)
        }
    }

    func testTheSignedJWTCarriesTheClaimsAndHeaderAsJSON() async throws {
        let pair = try Ed25519.generateKeyPair()
        let jwt = try await JWTProvider().issue(secret: try signer(pair, kid: "k1"), context: try context()).env["MLCRED_JWT"] ?? ""
        let parts = jwt.split(separator: ".").map(String.init)
        XCTAssertEqual(parts.count, 3)
        func json(_ part: String) throws -> [String: Any] {
            var text = part.replacingOccurrences(of: "-", with: "+").replacingOccurrences(of: "_", with: "/")
            while text.count % 4 != 0 { text += "=" }
            let bytes = try XCTUnwrap(Base64.decode(text))
            return try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(bytes)) as? [String: Any])
        }
        let header = try json(parts[0])
        XCTAssertEqual(header["alg"] as? String, "EdDSA")
        XCTAssertEqual(header["kid"] as? String, "k1")
        XCTAssertEqual(header["typ"] as? String, "JWT")
        let claims = try json(parts[1])
        XCTAssertEqual(claims["sub"] as? String, "alice")
        XCTAssertEqual(claims["aud"] as? String, "mlflow")
        XCTAssertEqual(claims["iss"] as? String, "mlcred")
        XCTAssertEqual((claims["exp"] as? NSNumber)?.intValue, 1_800_003_600)
        XCTAssertEqual((claims["iat"] as? NSNumber)?.intValue, 1_800_000_000)
        XCTAssertEqual((claims["jti"] as? String)?.count, 32)
        XCTAssertTrue(verifies(jwt, pair.publicKey))
    }
}
