#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
import MLCredAPI
import MLCredCrypto
import MLCredStore

/// The root key wrapped under a key split into Shamir shares (SPEC §13): K different admins
/// each bring one share to unseal.
struct SharesWrap: Codable {
    var shares: Int
    var threshold: Int
    var splitID: String
    var sealed: String

    enum CodingKeys: String, CodingKey {
        case shares, threshold, sealed
        case splitID = "split_id"
    }
}

/// Shares submitted toward an unseal, kept in guarded memory (each share's value is
/// `SecureBytes`), forgotten after `Vault.shareWindowSeconds` or on reset.
struct ShareCollection {
    var shares: [Shamir.Share] = []
    var submitters: [UInt32] = []
    var startedAt: Double = 0

    mutating func forget() {
        for share in shares { share.wipe() }
        shares = []
        submitters = []
    }
}

extension Vault {
    /// How long submitted shares are kept waiting for the rest.
    static let shareWindowSeconds = 600.0

    /// Splits a fresh unseal key into `count` shares, `threshold` of which unseal; the root key
    /// is wrapped under it. Returns the shares' text forms (shown once, never stored).
    func makeSharesWrap(root: SecureBytes, count: Int, threshold: Int) throws -> (wrap: SharesWrap, texts: [String]) {
        let unsealKey = try SecureBytes.random(count: 32)
        defer { unsealKey.wipe() }
        let shares: [Shamir.Share]
        do {
            shares = try Shamir.split(unsealKey, shares: count, threshold: threshold)
        } catch let error as ShamirError {
            throw APIError(.vaultMethodInvalid, "cannot split the unseal key: \(error)")
        }
        defer { for share in shares { share.wipe() } }
        let texts = try shares.map { try ShareText.encode($0) }
        let sealed = try AEAD.seal(secret: root, key: unsealKey, associatedData: wrapAssociatedData(kind: "shares"))
        return (SharesWrap(shares: count, threshold: threshold, splitID: shares[0].splitIDHex, sealed: Base64.encode(sealed)), texts)
    }

    /// One admin's share toward an unseal. Each submission is audited with its submitter (never
    /// the share); K different uids' shares unseal. A wrong, repeated or foreign share is refused.
    public func submitShare(_ text: String, principal: Principal) async throws -> UnsealProgress {
        if case .uninitialized = state { await refreshInitialization() }
        if case .uninitialized = state { throw APIError.uninitialized }
        guard let wrapText = try await store.read({ try $0.meta(MetaKey.sharesWrap) }),
              let wrap = try? APIJSON.decode(SharesWrap.self, from: Array(wrapText.utf8)) else {
            throw APIError(.vaultMethodInvalid, "this vault is not unsealed with shares: use its passphrase or key file")
        }
        if case .unsealed = state {
            return UnsealProgress(received: 0, threshold: wrap.threshold, shares: wrap.shares, sealed: false)
        }
        let now = WallClock.now()
        if !shareCollection.shares.isEmpty && now - shareCollection.startedAt > Self.shareWindowSeconds { shareCollection.forget() }
        let share: Shamir.Share
        do {
            share = try ShareText.decode(text)
        } catch let error as ShamirError {
            try? await audit(AuditEvent(principal: principal, action: .vaultShare, result: .denied, reason: "unreadable share: \(error)"))
            throw APIError(.shareInvalid, "not a valid share: \(error)")
        }
        guard share.splitIDHex == wrap.splitID, share.threshold == wrap.threshold else {
            share.wipe()
            try? await audit(AuditEvent(principal: principal, action: .vaultShare, result: .denied, reason: "a share of another split"))
            throw APIError(.shareInvalid, "this share belongs to another split than this vault's (split \(wrap.splitID))")
        }
        guard !shareCollection.submitters.contains(principal.uid) else {
            share.wipe()
            throw APIError(.shareRepeated, "uid \(principal.uid) already brought a share: \(wrap.threshold) different admins must")
        }
        guard !shareCollection.shares.contains(where: { $0.x == share.x }) else {
            share.wipe()
            throw APIError(.shareRepeated, "share number \(share.x) was already brought: each admin brings a different one")
        }
        if shareCollection.shares.isEmpty { shareCollection.startedAt = now }
        shareCollection.shares.append(share)
        shareCollection.submitters.append(principal.uid)
        let received = shareCollection.shares.count
        try? await audit(AuditEvent(principal: principal, action: .vaultShare, result: .allowed,
                                    reason: "share \(received) of \(wrap.threshold) toward unseal (\(wrap.shares) exist)"))
        guard received >= wrap.threshold else {
            return UnsealProgress(received: received, threshold: wrap.threshold, shares: wrap.shares, sealed: true)
        }
        let collected = shareCollection.shares
        let submitters = shareCollection.submitters
        defer { shareCollection.forget() }
        let root: SecureBytes
        do {
            let unsealKey = try Shamir.combine(collected)
            defer { unsealKey.wipe() }
            guard let sealed = Base64.decode(wrap.sealed) else { throw APIError(.storageError, "the shares wrap is unreadable") }
            root = try AEAD.openSecret(sealed, key: unsealKey, associatedData: wrapAssociatedData(kind: "shares"))
        } catch {
            try? await audit(AuditEvent(principal: principal, action: .vaultUnseal, result: .denied,
                                        reason: "the shares of uids \(submitters.map(String.init).joined(separator: ", ")) do not open the vault"))
            throw APIError(.shareInvalid, "these \(collected.count) shares do not open the vault (one was mistyped into another valid share, or comes from an old split); start again")
        }
        try await beginLifecycle()
        defer { lifecycleBusy = false }
        try await completeUnseal(root: root, method: "shares of uids \(submitters.map(String.init).joined(separator: ", "))", principal: principal)
        return UnsealProgress(received: received, threshold: wrap.threshold, shares: wrap.shares, sealed: false)
    }

    /// Forgets the shares submitted so far (`vault unseal --reset`).
    /// Refused, as a share would be, on a vault not initialized or not unsealed with shares.
    public func resetShares(principal: Principal) async throws {
        if case .uninitialized = state { await refreshInitialization() }
        if case .uninitialized = state { throw APIError.uninitialized }
        guard try await store.read({ try $0.meta(MetaKey.sharesWrap) }) != nil else {
            throw APIError(.vaultMethodInvalid, "this vault is not unsealed with shares: there is nothing to reset")
        }
        let had = shareCollection.shares.count
        shareCollection.forget()
        try? await audit(AuditEvent(principal: principal, action: .vaultShare, result: .allowed,
                                    reason: "reset: \(Plural.count(had, "submitted share")) forgotten"))
    }

    /// Shares received toward an unseal now (`status`), or nil when the vault is not unsealed by shares or none wait.
    public func shareProgress() async -> UnsealProgress? {
        guard case .sealed = state, !shareCollection.shares.isEmpty else { return nil }
        if WallClock.now() - shareCollection.startedAt > Self.shareWindowSeconds {
            shareCollection.forget()
            return nil
        }
        guard let wrapText = try? await store.read({ try $0.meta(MetaKey.sharesWrap) }),
              let wrap = try? APIJSON.decode(SharesWrap.self, from: Array(wrapText.utf8)) else { return nil }
        return UnsealProgress(received: shareCollection.shares.count, threshold: wrap.threshold, shares: wrap.shares, sealed: true)
    }
}
