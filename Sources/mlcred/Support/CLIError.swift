import Glibc
import MLCredAPI
import MLCredClient

/// Exit codes of SPEC §5.
enum ExitStatus: Int32 {
    case ok = 0
    case error = 1
    case usage = 2
    case denied = 3
    case sealed = 4
    case unreachable = 5
}

/// A failure to report as one line, `mlcred: error: MESSAGE (hint: HINT)`, and an exit code.
struct CLIError: Error {
    let message: String
    let hint: String?
    let status: ExitStatus

    init(_ message: String, hint: String? = nil, status: ExitStatus = .error) {
        self.message = message
        self.hint = hint
        self.status = status
    }

    /// Why connecting to `socket` was refused: a directory on the way that does not let the
    /// caller through (its mode or owner), or else the socket's own group.
    static func deniedHint(socket: String) -> String {
        // From the root down: the first directory refused is the cause (those below it fail too).
        let components = socket.split(separator: "/").dropLast()
        var directory = socket.hasPrefix("/") ? "" : "."
        for component in components {
            directory += "/" + component
            // The effective ids, as connect() is judged: the installed mlcred is setgid.
            if faccessat(AT_FDCWD, directory, X_OK, AT_EACCESS) != 0 {
                return "the directory \(directory) does not let you through (its mode or owner: ls -ld \(directory)); use a socket where you may reach it, or ask its owner"
            }
        }
        return "the socket admits its group only: ask an admin to add you to it (group mlcred on installed hosts)"
    }

    /// Maps a client error to its message, hint and exit code. Hints follow the error's code
    /// and reason (or errno), never its message text.
    static func from(_ error: ClientError) -> CLIError {
        switch error {
        case .unreachable(let path, let reason, let failure):
            let hint = failure == EACCES || failure == EPERM
                ? deniedHint(socket: path)
                : "start mlcredd (or mlcredd --dev), or point --socket / MLCRED_SOCKET at its socket"
            return CLIError("cannot reach mlcredd at \(path): \(reason)", hint: hint, status: .unreachable)
        case .protocolError(let message):
            return CLIError("unexpected answer from mlcredd: \(message)", hint: "check that the socket belongs to mlcredd of the same version")
        case .untrustedDaemon:
            return CLIError(error.description, hint: "check who created the socket and its directory (ls -ld); if mlcredd runs as another user, name it in MLCRED_DAEMON_USER or daemon_user in /etc/mlcred/client.conf")
        case .apiDetailed(let status, let code, let reason, let message, _):
            return from(.api(status: status, code: code, reason: reason, message: message))
        case .api(_, let code, let reason, let message):
            return CLIError(message, hint: reason.map(hint(for:)) ?? hint(for: code), status: exitStatus(for: code))
        }
    }

    /// SPEC §5's exit code for an API error of class `code`.
    static func exitStatus(for code: APIErrorCode) -> ExitStatus {
        switch code {
        case .denied: .denied
        case .sealed, .uninitialized: .sealed
        case .badRequest, .unauthenticated, .notFound, .conflict, .tooLarge, .rateLimited, .internal, .upstream,
             .unavailable, .storeFull:
            .error
        }
    }

    /// What to do next about an error of class `code` whose reason is unknown (an older daemon,
    /// or a newer one with a reason this client does not know).
    static func hint(for code: APIErrorCode) -> String {
        switch code {
        case .badRequest: "see '\(Invocation.typedCommand) --help'"
        case .unauthenticated: "obtain a new token"
        case .denied: "'mlcred whoami' lists the roles you may assume here"
        case .notFound: "check the name"
        case .conflict: "check 'mlcred status'"
        case .tooLarge: "request bodies are limited to 64 KiB"
        case .rateLimited: "wait and try again"
        case .internal: "the daemon's log has details"
        case .upstream: "the provider refused or could not be reached"
        case .sealed: "an admin must run 'mlcred vault unseal'"
        case .uninitialized: "an admin must run 'mlcred vault init'"
        case .unavailable: "the daemon cannot reach its store: check the database server, then try again"
        case .storeFull: "free space on the store's disk, then try again"
        }
    }

    /// What to do next about an error of this precise reason.
    static func hint(for reason: APIErrorReason) -> String {
        switch reason {
        case .bodyMissing, .malformedHTTP, .unknownRoute:
            "check that mlcred and mlcredd are the same version"
        case .invalidBody, .invalidQuery, .invalidName, .invalidSecretType, .invalidSecretFields, .invalidTTL, .vaultMethodInvalid,
             .keyFileInvalid:
            "see '\(Invocation.typedCommand) --help'"
        case .passphraseTooShort:
            "choose a passphrase of at least 8 characters"
        case .passphraseNotSet:
            "this vault was initialized with a key file only: unseal it with --key-file"
        case .keyFileNotSet:
            "this vault was initialized with a passphrase only: unseal it with --passphrase-stdin or --passphrase-file"
        case .bindUnavailable:
            "binding a token to its process needs a kernel with SO_PEERPIDFD (Linux 6.5 or later)"
        case .grantNotAWS:
            "'mlcred policy list' shows each role's grants and their types"
        case .grantEnvInvalid, .grantInvalid:
            "fix the grant in the policy ('mlcred policy validate' checks it offline), then 'mlcred policy reload'"
        case .policyInvalid:
            "fix the files named above and reload again"
        case .tokenMissing, .tokenMalformed, .tokenUnknown, .tokenRevoked, .tokenExpired:
            "obtain a new token ('mlcred token --role R', or run the job under 'mlcred run')"
        case .notAdmin:
            // Names the command typed, not the route: the user knows what they ran.
            "run '\(Invocation.typedCommand)' with sudo, or ask an admin to add you to the daemon's admin group ('mlcred whoami' lists your groups)"
        case .roleDenied, .roleRemoved:
            "'mlcred whoami' lists the roles you may assume here"
        case .shareInvalid:
            "check the share for typos (its checksum catches most), that it belongs to this vault, or start again with 'mlcred vault unseal --reset'"
        case .shareRepeated:
            "each of the threshold's admins brings a different share, once"
        case .emergencyClosed:
            "two different admins must run 'mlcred emergency open --role R --reason TEXT' within 10 minutes"
        case .emergencyRoleMissing:
            "only roles marked emergency = true can be opened; 'mlcred emergency list' shows those asked for or open"
        case .emergencySameAdmin:
            "a second, different admin must run the same 'mlcred emergency open' within 10 minutes"
        case .roleUnknown:
            "check the role's name: 'mlcred whoami' lists the roles you may assume here"
        case .rolePhiRunOnly:
            "this mlcred is not the installed one: phi roles go only to 'mlcred run' installed setgid to the run group (scripts/install; docs/operations.md), run without a debugger or tracer"
        case .staticInPhi:
            "phi roles never receive stored values: replace the static grant with a dynamic one"
        case .secretPhiOnly:
            "use a phi role on a phi daemon, or store the secret without --phi"
        case .tokenOtherUID:
            "a token works only for the user who obtained it"
        case .tokenOtherNode:
            "a token works only on the node that issued it: get one from this node's daemon"
        case .wrongPassphrase, .wrongKeyFile:
            "check the passphrase or key file; each failure doubles the wait"
        case .secretMissing:
            "'mlcred secret list' shows what exists"
        case .grantMissing:
            "'mlcred policy list' shows each role's grants"
        case .leaseMissing:
            "'mlcred lease list' shows what exists"
        case .accessorMissing:
            "'mlcred token list' shows what exists"
        case .nodeMissing:
            "'mlcred fleet status' lists the nodes"
        case .nodeLive:
            "stop that node's daemon and wait past its --node-timeout, then forget it from another node"
        case .nodeHasLeases:
            "a live, unsealed node takes them over within a few seconds: unseal one if none is, then try again"
        case .alreadyInitialized:
            "'mlcred status' says whether it is sealed; 'mlcred vault unseal' opens a sealed vault"
        case .vaultBusy:
            "another init, unseal or seal is running: try again when it ends"
        case .secretInUse:
            "'mlcred lease list' shows them; 'mlcred secret rm NAME --force' removes it anyway"
        case .secretTypeMismatch:
            "'mlcred secret list' shows each secret's type"
        case .secretMoved:
            "'mlcred lease list' shows the lease; put the secret back as it was, then it is retried"
        case .variableConflict:
            "fetch the grants one at a time, or give a non-AWS grant an env table"
        case .headersTooLarge:
            "request headers are limited to 8 KiB"
        case .bodyTooLarge:
            "request bodies are limited to 64 KiB"
        case .tooManyConnections:
            "wait and try again"
        case .tokenLimitReached:
            "revoke tokens you no longer need ('mlcred token revoke --current' in a job, or an admin's 'mlcred token revoke ACCESSOR'), or let them expire"
        case .internal, .storageError, .secretIncomplete, .grantTypeUnavailable:
            "the daemon's log has details"
        case .secretCorrupt:
            "the stored record was altered: put the secret again, or restore the database from a backup"
        case .upstreamUnreachable:
            "check the secret's address (aws: region, endpoint_url; postgres: host, port) and that the service is up"
        case .upstreamTimeout:
            "the provider did not answer in time: check that it is up and reachable, then try again"
        case .upstreamBusy:
            "the provider is saturated: try again shortly"
        case .upstreamSignature:
            "check the aws secret's access_key_id and secret_access_key, and this host's clock"
        case .upstreamLogin:
            "check the postgres secret's user and password"
        case .upstreamDenied:
            "the broker's identity lacks a permission: check the role's trust policy (aws) or the login's privileges (postgres)"
        case .upstreamRefused:
            "check the grant (aws: role_arn, policy; postgres: its statements) against the provider's answer"
        case .upstreamAnswerInvalid:
            "check that the secret's endpoint is the real service"
        case .upstreamFailed:
            "the provider refused or could not be reached"
        case .sealed, .uninitialized, .storeUnavailable, .storeFull:
            hint(for: reason.code)
        }
    }
}
