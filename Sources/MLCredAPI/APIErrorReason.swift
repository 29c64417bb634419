/// The precise cause of an API error: a stable snake_case word sent as `error.reason` (SPEC §9),
/// for clients to branch on instead of the message. Each reason belongs to exactly one
/// `APIErrorCode` (`code`). Raw values never change once released; `docs/api.md` lists them all.
public enum APIErrorReason: String, Codable, Sendable, CaseIterable {
    // MARK: bad_request

    /// The body is not JSON, lacks a field, has one of the wrong type, or a field holds a value
    /// the route does not take (`aws`, `bind`).
    case invalidBody = "invalid_body"
    /// The route needs a JSON body and none came.
    case bodyMissing = "body_missing"
    /// A query parameter (`after`, `since`, `limit`) is malformed.
    case invalidQuery = "invalid_query"
    /// A secret name outside 1-128 letters, digits, `.`, `_`, `-` (not starting with `.` or `-`).
    case invalidName = "invalid_name"
    /// An unknown secret type, or one the operation does not make (`put` of a jwt-signer,
    /// `generate` of anything else).
    case invalidSecretType = "invalid_secret_type"
    /// A secret's fields are missing, unknown, empty or malformed for its type (also a stored
    /// secret found unusable when a credential is made from it).
    case invalidSecretFields = "invalid_secret_fields"
    /// A ttl that is not a duration such as `30m` or `1h`.
    case invalidTTL = "invalid_ttl"
    /// `init` with neither a passphrase nor a key file, or `unseal` without exactly one of them.
    case vaultMethodInvalid = "vault_method_invalid"
    /// `init` with a passphrase shorter than 8 characters.
    case passphraseTooShort = "passphrase_too_short"
    /// A key that is not base64, or (at `init`) not 32 bytes.
    case keyFileInvalid = "key_file_invalid"
    /// `unseal` with a passphrase of a vault initialized with a key file only.
    case passphraseNotSet = "passphrase_not_set"
    /// `unseal` with a key file of a vault initialized with a passphrase only.
    case keyFileNotSet = "key_file_not_set"
    /// `bind: "process"`, but the calling process cannot be pinned (it exited, or the kernel
    /// lacks SO_PEERPIDFD).
    case bindUnavailable = "bind_unavailable"
    /// An AWS-only request (`credential-process --grant NAME`) named a grant of another type.
    case grantNotAWS = "grant_not_aws"
    /// A grant's `env` table maps a variable to a field its credential does not have.
    case grantEnvInvalid = "grant_env_invalid"
    /// A grant's PostgreSQL statements break the broker's rules, or did not create the role.
    case grantInvalid = "grant_invalid"
    /// A policy reload found errors (each one is in `details`); the last good set stays.
    case policyInvalid = "policy_invalid"
    /// The request is not parseable HTTP/1.1, or its Content-Length is invalid.
    case malformedHTTP = "malformed_http"

    // MARK: unauthenticated

    /// The route needs `Authorization: Bearer <token>` and none came.
    case tokenMissing = "token_missing"
    /// The bearer token does not have a token's shape.
    case tokenMalformed = "token_malformed"
    /// No token with this value was ever issued here (or it was purged after its retention).
    case tokenUnknown = "token_unknown"
    /// The token was revoked (by its owner, an admin, the end of its process, or a revocation
    /// that landed while its credentials were being made).
    case tokenRevoked = "token_revoked"
    /// The token is past its expiry.
    case tokenExpired = "token_expired"
    /// The token was issued by another node of the fleet: tokens are valid only where they were
    /// issued (SPEC §12).
    case tokenOtherNode = "token_other_node"

    // MARK: denied

    /// The caller is not an admin (uid 0, the daemon's uid, or a member of the admin group).
    case notAdmin = "not_admin"
    /// No policy lets the caller assume the role here.
    case roleDenied = "role_denied"
    /// No role of that name is loaded (403 as any refusal; a reason of its own so clients can
    /// say "check the name").
    case roleUnknown = "role_unknown"
    /// An emergency role is closed: two admins must open it first (`mlcred emergency open`).
    case emergencyClosed = "emergency_closed"
    /// A phi role is issued only to `mlcred run` (a token bound to its process).
    case rolePhiRunOnly = "role_phi_run_only"
    /// The token's role is gone from the loaded policies.
    case roleRemoved = "role_removed"
    /// A phi role has a static grant: phi roles never receive stored values as they are.
    case staticInPhi = "static_in_phi"
    /// A phi-labelled secret was asked for by a role that is not phi.
    case secretPhiOnly = "secret_phi_only"
    /// The token belongs to another uid (audited).
    case tokenOtherUID = "token_other_uid"
    /// `unseal` with a wrong passphrase (audited; each failure doubles the wait).
    case wrongPassphrase = "wrong_passphrase"
    /// `unseal` with a wrong key file (audited; each failure doubles the wait).
    case wrongKeyFile = "wrong_key_file"
    /// A Shamir share that is unreadable, of another split, or (with the others) does not open the vault (audited).
    case shareInvalid = "share_invalid"

    // MARK: not_found

    /// No route has this method and path.
    case unknownRoute = "unknown_route"
    /// The secret does not exist (named directly, by a grant, or by a lease being revoked).
    case secretMissing = "secret_missing"
    /// The role has no grant of this name (or no AWS grant) in this environment.
    case grantMissing = "grant_missing"
    /// No live lease has this id.
    case leaseMissing = "lease_missing"
    /// No live token has this accessor.
    case accessorMissing = "accessor_missing"
    /// No loaded role of this name is marked `emergency = true`.
    case emergencyRoleMissing = "emergency_role_missing"
    /// No node of this name has a row in the store (`DELETE /v1/fleet/nodes/{name}`).
    case nodeMissing = "node_missing"

    // MARK: conflict

    /// `init` of a vault that is already initialized.
    case alreadyInitialized = "already_initialized"
    /// Another init, unseal or seal is in progress.
    case vaultBusy = "vault_busy"
    /// `DELETE /v1/secrets/{name}` while live leases need the secret to be revoked (use `force`).
    case secretInUse = "secret_in_use"
    /// `DELETE /v1/fleet/nodes/{name}` of a node that is not silent past its timeout, whose daemon
    /// still holds its name on the store, or of the answering node itself.
    case nodeLive = "node_live"
    /// `DELETE /v1/fleet/nodes/{name}` while leases of that node still wait for a live node to
    /// take them over.
    case nodeHasLeases = "node_has_leases"
    /// A grant names a secret of another type than its grant type needs.
    case secretTypeMismatch = "secret_type_mismatch"
    /// A PostgreSQL secret now points at another server than the one a lease's role was made on.
    case secretMoved = "secret_moved"
    /// Two grants of one role set the same variable to different values.
    case variableConflict = "variable_conflict"
    /// A share number, or a uid, already brought toward this unseal: K different admins must.
    case shareRepeated = "share_repeated"
    /// The admin who asked for an emergency role tried to confirm it too: a second, different admin must.
    case emergencySameAdmin = "emergency_same_admin"

    // MARK: too_large

    /// Request headers over 8 KiB.
    case headersTooLarge = "headers_too_large"
    /// A request body over 64 KiB (refused from Content-Length before it is read).
    case bodyTooLarge = "body_too_large"

    // MARK: rate_limited

    /// The connection caps (in total or per uid) are reached.
    case tooManyConnections = "too_many_connections"
    /// The caller's uid holds as many live tokens as the daemon allows one uid
    /// (`mlcredd --max-tokens-per-uid`).
    case tokenLimitReached = "token_limit_reached"

    // MARK: internal

    /// An unexpected failure; the daemon's log has the details.
    case `internal`
    /// The store failed a read or write.
    case storageError = "storage_error"
    /// A stored secret failed authenticated decryption: its record was altered, moved or copied
    /// from another vault (the message names it).
    case secretCorrupt = "secret_corrupt"
    /// A stored secret lacks a field its provider needs.
    case secretIncomplete = "secret_incomplete"
    /// A grant type this build has no provider for.
    case grantTypeUnavailable = "grant_type_unavailable"

    // MARK: upstream

    /// The provider could not be reached (connection refused or failed, no route, DNS).
    case upstreamUnreachable = "upstream_unreachable"
    /// The provider did not answer in time.
    case upstreamTimeout = "upstream_timeout"
    /// The provider is saturated: PostgreSQL's connections (53300, or the broker's own limit of
    /// connections per server stayed busy), STS throttling.
    case upstreamBusy = "upstream_busy"
    /// STS refused the broker's keys or signature (InvalidClientTokenId, SignatureDoesNotMatch,
    /// ExpiredToken, RequestExpired, ...).
    case upstreamSignature = "upstream_signature"
    /// PostgreSQL refused the broker's login (SQLSTATE class 28).
    case upstreamLogin = "upstream_login"
    /// The provider refused the broker's identity this action (STS AccessDenied, PostgreSQL 42501).
    case upstreamDenied = "upstream_denied"
    /// The provider refused the request for another reason (an STS validation error, a
    /// PostgreSQL statement that failed).
    case upstreamRefused = "upstream_refused"
    /// The provider answered, but not with what was asked for (no credentials, an odd shape,
    /// an expiry outside what can be handed out).
    case upstreamAnswerInvalid = "upstream_answer_invalid"
    /// The provider failed on its side (HTTP 5xx), or in a way none of the above names.
    case upstreamFailed = "upstream_failed"

    // MARK: sealed, uninitialized, unavailable, store_full

    /// The vault is sealed: an admin must unseal it.
    case sealed
    /// The vault is not initialized: an admin must init it.
    case uninitialized
    /// The store cannot be reached.
    case storeUnavailable = "store_unavailable"
    /// The store's disk is below its free-space reserve.
    case storeFull = "store_full"

    /// The class this reason is answered with (one table, total over every reason).
    public var code: APIErrorCode {
        switch self {
        case .invalidBody, .bodyMissing, .invalidQuery, .invalidName, .invalidSecretType, .invalidSecretFields, .invalidTTL,
             .vaultMethodInvalid, .passphraseTooShort, .keyFileInvalid, .passphraseNotSet, .keyFileNotSet, .bindUnavailable,
             .grantNotAWS, .grantEnvInvalid, .grantInvalid, .policyInvalid, .malformedHTTP:
            .badRequest
        case .tokenMissing, .tokenMalformed, .tokenUnknown, .tokenRevoked, .tokenExpired, .tokenOtherNode:
            .unauthenticated
        case .notAdmin, .roleDenied, .roleUnknown, .emergencyClosed, .rolePhiRunOnly, .roleRemoved, .staticInPhi, .secretPhiOnly, .tokenOtherUID,
             .wrongPassphrase, .wrongKeyFile, .shareInvalid:
            .denied
        case .unknownRoute, .secretMissing, .grantMissing, .leaseMissing, .accessorMissing, .emergencyRoleMissing, .nodeMissing:
            .notFound
        case .alreadyInitialized, .vaultBusy, .secretInUse, .nodeLive, .nodeHasLeases, .secretTypeMismatch, .secretMoved, .variableConflict, .emergencySameAdmin, .shareRepeated:
            .conflict
        case .headersTooLarge, .bodyTooLarge:
            .tooLarge
        case .tooManyConnections, .tokenLimitReached:
            .rateLimited
        case .internal, .storageError, .secretCorrupt, .secretIncomplete, .grantTypeUnavailable:
            .internal
        case .upstreamUnreachable, .upstreamTimeout, .upstreamBusy, .upstreamSignature, .upstreamLogin, .upstreamDenied,
             .upstreamRefused, .upstreamAnswerInvalid, .upstreamFailed:
            .upstream
        case .sealed: .sealed
        case .uninitialized: .uninitialized
        case .storeUnavailable: .unavailable
        case .storeFull: .storeFull
        }
    }
}
