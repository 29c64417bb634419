import Glibc
import MLCredCrypto
import MLCredAPI
import MLCredPolicy
import MLCredStore
import MLCredVault

extension Router {
    func status() async throws -> HTTPResponse {
        let state = await vault.status
        let open = await broker.openEmergencies()
        var answer = StatusResponse(
            initialized: state.initialized, sealed: state.sealed, environment: vault.settings.environment,
            phi: vault.settings.phi, version: mlcredVersion, emergencies: open.isEmpty ? nil : open)
        answer.unsealProgress = await vault.shareProgress()
        if let rotation = await vault.rotationStatus(), rotation.generation > 1 {
            answer.keyGeneration = rotation.generation
            answer.reencryptPending = rotation.pending
        }
        return .json(answer)
    }

    func whoami(_ peer: PeerIdentity) async -> HTTPResponse {
        let groupNames = peer.principal.groups.map { names.groupName(gid: $0) ?? String($0) }
        let admitted = broker.assumableRoles(subject: subject(peer))
        return .json(WhoamiResponse(
            principal: peer.principal, groupNames: groupNames, admin: peer.isAdmin(adminGroup: adminGroup),
            environment: vault.settings.environment, roles: admitted.roles, emergencyRoles: admitted.emergency))
    }

    func vaultInit(_ request: HTTPRequest, _ peer: PeerIdentity) async throws -> HTTPResponse {
        let body = try decode(VaultKeyRequest.self, request)
        let key = try body.key.map(Self.decodeKey)
        let passphrase = body.passphrase.map { Array($0.utf8) }
        var shares: (count: Int, threshold: Int)?
        if body.shares != nil || body.threshold != nil {
            guard let count = body.shares, let threshold = body.threshold else {
                throw APIError(.vaultMethodInvalid, "give both shares and threshold")
            }
            shares = (count, threshold)
        }
        let texts = try await vault.initialize(passphrase: passphrase, keyFileKey: key, shares: shares, principal: peer.principal)
        return .json(VaultStateResponse(initialized: true, sealed: false, shares: texts.isEmpty ? nil : texts))
    }

    func vaultUnseal(_ request: HTTPRequest, _ peer: PeerIdentity) async throws -> HTTPResponse {
        let body = try decode(VaultKeyRequest.self, request)
        if body.reset == true {
            try await vault.resetShares(principal: peer.principal)
            return .json(VaultStateResponse(initialized: true, sealed: await vault.status.sealed))
        }
        if let share = body.share {
            let progress = try await vault.submitShare(share, principal: peer.principal)
            return .json(VaultStateResponse(initialized: true, sealed: progress.sealed, progress: progress))
        }
        let key = try body.key.map(Self.decodeKey)
        let passphrase = body.passphrase.map { Array($0.utf8) }
        try await vault.unseal(passphrase: passphrase, keyFileKey: key, principal: peer.principal)
        return .json(VaultStateResponse(initialized: true, sealed: false))
    }

    func vaultRekey(_ request: HTTPRequest, _ peer: PeerIdentity) async throws -> HTTPResponse {
        let body = try decode(VaultRekeyRequest.self, request)
        var newShares: (count: Int, threshold: Int)?
        if body.newShares != nil || body.newThreshold != nil {
            guard let count = body.newShares, let threshold = body.newThreshold else {
                throw APIError(.vaultMethodInvalid, "give both new_shares and new_threshold")
            }
            newShares = (count, threshold)
        }
        let answer = try await vault.rekey(
            passphrase: body.passphrase.map { Array($0.utf8) }, keyFileKey: try body.key.map(Self.decodeKey), shares: body.shares,
            newPassphrase: body.newPassphrase.map { Array($0.utf8) }, newKeyFileKey: try body.newKey.map(Self.decodeKey),
            newShares: newShares, principal: peer.principal)
        return .json(answer)
    }

    /// `POST /v1/vault/backup`: a consistent online snapshot of the store (SQLite's backup API),
    /// answered as one JSON line (`VaultBackupSummary`) and the database file's bytes. The
    /// snapshot is made in the state directory (never at a path a caller names: the daemon's
    /// user must not write where an admin points it) and removed once read.
    func vaultBackup(_ peer: PeerIdentity) async throws -> HTTPResponse {
        let path = store.directory + "/backup-" + Hex.encode(Sodium.randomBytes(8)) + ".db"
        defer { unlink(path) }
        let summary: SnapshotSummary
        do {
            summary = try await store.snapshot(to: path)
        } catch {
            throw APIError(.storageError, "backup failed: \(error)")
        }
        guard let bytes = Self.readWhole(path) else { throw APIError(.storageError, "backup failed: the snapshot could not be read") }
        let head = summary.head.map { "head seq \($0.seq)" } ?? "no MAC'd head"
        try await vault.audit(AuditEvent(principal: peer.principal, action: .vaultBackup, result: .allowed,
                                         reason: "snapshot of \(bytes.count) bytes, \(Plural.count(Int(summary.records), "audit record")), \(head)"))
        let line = try APIJSON.encode(VaultBackupSummary(bytes: bytes.count, records: summary.records, head: summary.head))
        return HTTPResponse(status: 200, body: line + [0x0A] + bytes, contentType: VaultBackupSummary.contentType)
    }

    static func readWhole(_ path: String) -> [UInt8]? {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        var out: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 1 << 20)
        while true {
            let n = read(fd, &chunk, chunk.count)
            if n < 0 { if errno == EINTR { continue }; return nil }
            if n == 0 { return out }
            out += chunk.prefix(n)
        }
    }

    func vaultSeal(_ peer: PeerIdentity) async throws -> HTTPResponse {
        try await vault.seal(principal: peer.principal)
        broker.forgetProviderKeys()
        return .json(VaultStateResponse(initialized: true, sealed: true))
    }

    static func decodeKey(_ text: String) throws -> [UInt8] {
        guard let key = Base64.decode(text) else { throw APIError(.keyFileInvalid, "field 'key' must be base64") }
        return key
    }

    func secretPut(name: String, _ request: HTTPRequest, _ peer: PeerIdentity) async throws -> HTTPResponse {
        let body = try decode(SecretPutRequest.self, request)
        var rotateEvery: Int?
        if let text = body.rotateEvery {
            guard let seconds = PolicyDuration.parse(text), seconds >= 1 else {
                throw APIError(.invalidTTL, "invalid rotate_every: a duration such as 30d or 12h")
            }
            rotateEvery = seconds
        }
        let answer = try await vault.putSecret(name: name, request: body, rotateEvery: rotateEvery, principal: peer.principal)
        // A fixed or restored secret lets failed revocations finish now rather than after their backoff.
        await broker.retryRevocations(secret: name)
        return .json(answer, status: 200)
    }

    func secretGenerate(name: String, _ request: HTTPRequest, _ peer: PeerIdentity) async throws -> HTTPResponse {
        let body = try decode(SecretGenerateRequest.self, request)
        return .json(try await vault.generateSecret(name: name, request: body, principal: peer.principal))
    }

    func auditShow(_ request: HTTPRequest, _ peer: PeerIdentity) async throws -> HTTPResponse {
        var after: Int64?
        if let text = request.query["after"] {
            guard let value = Int64(text), value >= 0 else { throw APIError(.invalidQuery, "'after' must be a sequence number") }
            after = value
        }
        var since: Double?
        if let text = request.query["since"] {
            guard let value = Timestamp.parse(text) else {
                throw APIError(.invalidQuery, "'since' must be an RFC 3339 UTC time such as 2026-11-26T17:00:00Z")
            }
            since = value
        }
        var limit = Limits.defaultAuditPage
        if let text = request.query["limit"] {
            guard let value = Int(text), value > 0 else { throw APIError(.invalidQuery, "'limit' must be a positive number") }
            limit = min(value, Limits.maxAuditPage)
        }
        // `node`: one node's chain (SPEC §12); `after_node` with `after`: export's position across chains.
        let node = request.query["node"]
        let afterNode = request.query["after_node"]
        // An empty `after_node` is export's start: before every node's chain.
        for name in [node, afterNode].compactMap({ $0 }) where !NodeName.isValid(name) && !(name.isEmpty && name == afterNode) {
            throw APIError(.invalidQuery, "'node' must be a node name: \(NodeName.requirement)")
        }
        return .json(AuditPage(records: try await vault.auditRecords(node: node, afterNode: afterNode, afterSeq: after, since: since, limit: limit)))
    }
}
