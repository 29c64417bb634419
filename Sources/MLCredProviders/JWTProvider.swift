import MLCredAPI
import MLCredCrypto
import MLCredPolicy
import Synchronization

/// `jwt` grants: an EdDSA (Ed25519) JWT signed by a `jwt-signer` secret, verifiable with
/// `GET /v1/jwks`. Claims: `iss` (the signer's issuer), `sub` (the principal), `aud`, `exp`
/// (the token's expiry), `nbf`, `iat`, `jti`, plus the grant's own claims, which cannot
/// override those.
public struct JWTProvider: CredentialProvider {
    public let grantTypes: [GrantType] = [.jwt]
    /// Default variable holding the JWT.
    public static let defaultVariable = GrantVariables.jwtDefault
    private let keys = SigningKeys()

    public init() {}

    public func forgetKeys() {
        keys.wipeAll()
    }

    public func issue(secret: OpenedSecret, context: IssuanceContext) async throws -> IssuedCredential {
        guard var privateKey = secret.fields["private_key"].flatMap(Base64.decode), privateKey.count == Ed25519.secretKeyLength,
              let kid = secret.fields["kid"] else {
            throw APIError(.secretIncomplete, "jwt-signer secret '\(secret.name)' has no usable signing key")
        }
        defer { Sodium.wipe(&privateKey) }
        let key = try keys.key(secret: secret.name, bytes: privateKey)
        let jti = Hex.encode(Sodium.randomBytes(16))
        var claims = context.grant.claims
        claims["iss"] = .string(secret.fields["issuer"] ?? "mlcred")
        claims["sub"] = .string(context.subject)
        claims["aud"] = .string(context.grant.audience ?? "")
        claims["iat"] = .integer(Int(context.now))
        claims["nbf"] = .integer(Int(context.now))
        claims["exp"] = .integer(Int(context.expiresAt))
        claims["jti"] = .string(jti)
        // Written directly (sorted keys, as the encoder wrote them): Foundation's JSONEncoder was
        // a tenth of the event loop's time per credential fetch.
        var header = JSONWriter(capacity: 64)
        header.beginObject()
        header.field("alg", "EdDSA")
        header.field("kid", kid)
        header.field("typ", "JWT")
        header.endObject()
        var payload = JSONWriter(capacity: 256)
        PolicyValue.table(claims).write(to: &payload)
        let signingInput = Base64.encodeURL(header.bytes) + "." + Base64.encodeURL(payload.bytes)
        let signature: [UInt8]
        do {
            signature = try Ed25519.sign(Array(signingInput.utf8), secretKey: key)
        } catch CryptoError.keyWiped {
            // A seal wiped the kept key between opening the secret and signing.
            throw APIError(.sealed, "the vault was sealed while the JWT was being signed")
        }
        let jwt = signingInput + "." + Base64.encodeURL(signature)
        var env: [String: String] = [:]
        if context.grant.env.isEmpty {
            env[Self.defaultVariable] = jwt
        } else {
            for (variable, field) in context.grant.env {
                guard field == "token" else {
                    throw APIError(.grantEnvInvalid, "grant '\(context.grant.name)': a jwt credential has one field, 'token' (env names '\(field)')")
                }
                env[variable] = jwt
            }
        }
        return IssuedCredential(env: env, providerID: jti, expiresAt: context.expiresAt)
    }


    /// The JWK of a jwt-signer secret's public key.
    public static func jwk(of secret: OpenedSecret) -> JWKSet.Key? {
        guard let kid = secret.fields["kid"], let x = secret.fields["public_key"] else { return nil }
        return JWKSet.Key(kid: kid, x: x)
    }
}

/// Signing keys of jwt-signer secrets, kept in guarded memory while the vault is unsealed.
/// A fresh `sodium_malloc` per JWT maps, fences and unmaps pages, a TLB shootdown on every
/// core per request (a tenth of the daemon's time under load). One entry per secret name,
/// replaced when the stored key changes (compared in constant time), wiped at seal.
final class SigningKeys: Sendable {
    private let entries = Mutex<[String: SecureBytes]>([:])

    /// The guarded copy of `bytes` for `secret`, made on first use.
    func key(secret: String, bytes: [UInt8]) throws -> SecureBytes {
        if let cached = entries.withLock({ $0[secret] }), cached.holds(bytes) { return cached }
        // A replaced key is not wiped here: a request may still be signing with it. It is
        // zeroed by sodium_free when its last reference goes.
        let fresh = try SecureBytes.copying(bytes)
        entries.withLock { $0[secret] = fresh }
        return fresh
    }

    /// Wipes and forgets every key.
    func wipeAll() {
        let all = entries.withLock { entries in
            defer { entries.removeAll() }
            return Array(entries.values)
        }
        for key in all { key.wipe() }
    }
}
