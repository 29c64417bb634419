import XCTest
@testable import MLCredCrypto

final class CryptoTests: XCTestCase {
    override func setUp() {
        XCTAssertNoThrow(try Sodium.initialize())
    }

    func testSealedRecordOpensOnlyWithItsKeyAndAssociatedData() throws {
        let key = try SecureBytes.random(count: AEAD.keyLength)
        let sealed = try AEAD.seal(Array("payload".utf8), key: key, associatedData: Array("name=a".utf8))
        XCTAssertEqual(try AEAD.open(sealed, key: key, associatedData: Array("name=a".utf8)), Array("payload".utf8))
        XCTAssertThrowsError(try AEAD.open(sealed, key: key, associatedData: Array("name=b".utf8))) {
            XCTAssertEqual($0 as? CryptoError, .authenticationFailed)
        }
        var flipped = sealed
        flipped[flipped.count - 1] ^= 1
        XCTAssertThrowsError(try AEAD.open(flipped, key: key, associatedData: Array("name=a".utf8)))
        let other = try SecureBytes.random(count: AEAD.keyLength)
        XCTAssertThrowsError(try AEAD.open(sealed, key: other, associatedData: Array("name=a".utf8)))
        XCTAssertThrowsError(try AEAD.open([1, 2, 3], key: key, associatedData: []))
    }

    func testEverySealUsesAFreshNonce() throws {
        let key = try SecureBytes.random(count: AEAD.keyLength)
        let a = try AEAD.seal([1, 2, 3], key: key, associatedData: [])
        let b = try AEAD.seal([1, 2, 3], key: key, associatedData: [])
        XCTAssertNotEqual(Array(a.prefix(AEAD.nonceLength)), Array(b.prefix(AEAD.nonceLength)))
    }

    func testAWipedKeyRefusesToBeUsed() throws {
        let key = try SecureBytes.random(count: AEAD.keyLength)
        key.wipe()
        XCTAssertTrue(key.isWiped)
        XCTAssertThrowsError(try AEAD.seal([1], key: key, associatedData: [])) { XCTAssertEqual($0 as? CryptoError, .keyWiped) }
        XCTAssertThrowsError(try MAC.blake2b([1], key: key)) { XCTAssertEqual($0 as? CryptoError, .keyWiped) }
    }

    func testArgon2idIsDeterministicPerSaltAndPassphrase() throws {
        let salt = Sodium.randomBytes(PasswordKDF.saltLength)
        let p = PasswordKDFParameters.unsafeTestOnly
        let a = try PasswordKDF.deriveKey(passphrase: Array("pass".utf8), salt: salt, parameters: p)
        let b = try PasswordKDF.deriveKey(passphrase: Array("pass".utf8), salt: salt, parameters: p)
        let c = try PasswordKDF.deriveKey(passphrase: Array("pasS".utf8), salt: salt, parameters: p)
        let sealed = try AEAD.seal([42], key: a, associatedData: [])
        XCTAssertEqual(try AEAD.open(sealed, key: b, associatedData: []), [42])
        XCTAssertThrowsError(try AEAD.open(sealed, key: c, associatedData: []))
        XCTAssertThrowsError(try PasswordKDF.deriveKey(passphrase: [1], salt: [1, 2], parameters: p))
    }

    func testModerateIsTheLibsodiumModerateSetting() {
        XCTAssertEqual(PasswordKDFParameters.moderate.memLimit, 256 * 1024 * 1024)
        XCTAssertEqual(PasswordKDFParameters.moderate.opsLimit, 3)
    }

    func testSubkeysDifferPerPurposeAndAreStable() throws {
        let root = try SecureBytes.random(count: 32)
        let one = try MAC.blake2b([1], key: KeyDerivation.subkey(of: root, for: .secretEncryption))
        let two = try MAC.blake2b([1], key: KeyDerivation.subkey(of: root, for: .auditChain))
        let again = try MAC.blake2b([1], key: KeyDerivation.subkey(of: root, for: .secretEncryption))
        XCTAssertNotEqual(one, two)
        XCTAssertEqual(one, again)
    }

    func testKeyedBlake2bDependsOnTheKey() throws {
        let a = try MAC.blake2b(Array("m".utf8), key: SecureBytes.random(count: 32))
        let b = try MAC.blake2b(Array("m".utf8), key: SecureBytes.random(count: 32))
        XCTAssertEqual(a.count, 32)
        XCTAssertNotEqual(a, b)
    }

    func testEd25519SignaturesVerifyAndDetectChanges() throws {
        let pair = try Ed25519.generateKeyPair()
        let signature = try Ed25519.sign(Array("header.claims".utf8), secretKey: pair.secretKey)
        XCTAssertTrue(Ed25519.verify(signature, message: Array("header.claims".utf8), publicKey: pair.publicKey))
        XCTAssertFalse(Ed25519.verify(signature, message: Array("header.claimz".utf8), publicKey: pair.publicKey))
    }

    func testConstantTimeEqual() {
        XCTAssertTrue(Sodium.constantTimeEqual([1, 2], [1, 2]))
        XCTAssertFalse(Sodium.constantTimeEqual([1, 2], [1, 3]))
        XCTAssertFalse(Sodium.constantTimeEqual([1], [1, 2]))
    }
}
