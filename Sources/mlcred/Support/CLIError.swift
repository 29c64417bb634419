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

    /// Maps a client error to its message, hint and exit code.
    static func from(_ error: ClientError) -> CLIError {
        switch error {
        case .unreachable(let path, let reason):
            let hint = reason.contains("Permission denied")
                ? "the socket admits its group only: ask an admin to add you to it (group mlcred on installed hosts)"
                : "start mlcredd (or mlcredd --dev), or point --socket / MLCRED_SOCKET at its socket"
            return CLIError("cannot reach mlcredd at \(path): \(reason)", hint: hint, status: .unreachable)
        case .protocolError(let message):
            return CLIError("unexpected answer from mlcredd: \(message)", hint: "check that the socket belongs to mlcredd of the same version")
        case .apiDetailed(let status, let code, let message, _):
            return from(.api(status: status, code: code, message: message))
        case .api(_, let code, let message):
            switch code {
            case .denied:
                let hint = message.contains("unseal failed") ? "check the passphrase or key file; each failure doubles the wait"
                    : message.contains("needs an admin") ? "run as root, as the daemon's user, or as a member of its admin group"
                    : message.contains("another user") ? "a token works only for the user who obtained it"
                    : "'mlcred whoami' lists the roles you may assume here"
                return CLIError(message, hint: hint, status: .denied)
            case .sealed:
                return CLIError(message, hint: "an admin must run 'mlcred vault unseal'", status: .sealed)
            case .uninitialized:
                return CLIError(message, hint: "an admin must run 'mlcred vault init'", status: .sealed)
            case .badRequest:
                return CLIError(message, hint: "see 'mlcred help' for this command")
            case .notFound:
                let hint = message.contains("secret") ? "'mlcred secret list' shows what exists"
                    : message.contains("lease") ? "'mlcred lease list' shows what exists"
                    : message.contains("token") ? "'mlcred token list' shows what exists"
                    : "check the name"
                return CLIError(message, hint: hint)
            case .conflict:
                let hint = message.contains("needs a secret of type") ? "'mlcred secret list' shows each secret's type; fix the grant or the secret"
                    : message.contains("both set") ? "rename one grant's variables with an env table"
                    : message.contains("is needed to revoke") ? "'mlcred lease list' shows them; 'mlcred secret rm NAME --force' removes it anyway"
                    : message.contains("now points to") ? "'mlcred lease list' shows the lease; put the secret back as it was, then it is retried"
                    : "check 'mlcred status'"
                return CLIError(message, hint: hint)
            case .tooLarge:
                return CLIError(message, hint: "request bodies are limited to 64 KiB")
            case .rateLimited:
                return CLIError(message, hint: "wait and try again")
            case .unauthenticated:
                return CLIError(message, hint: "obtain a new token")
            case .upstream:
                let hint = message.contains("STS") ? "check the aws secret (keys, region, endpoint_url) and the grant (role_arn, policy)"
                    : message.contains("PostgreSQL") ? "check the postgres secret (host, port, login) and the grant's statements"
                    : "the provider refused or could not be reached"
                return CLIError(message, hint: hint)
            case .internal:
                return CLIError(message, hint: "the daemon's log has details")
            }
        }
    }
}

/// Names that travel in a URL path: checked here so a `?`, `/` or space can never make a
/// request act on another name than the one typed.
enum PathName {
    static func check(_ name: String, what: String) throws -> String {
        let bytes = Array(name.utf8)
        let allowed = bytes.allSatisfy {
            ($0 >= 97 && $0 <= 122) || ($0 >= 65 && $0 <= 90) || ($0 >= 48 && $0 <= 57) || $0 == 46 || $0 == 95 || $0 == 45
        }
        guard !bytes.isEmpty, bytes.count <= 128, allowed, bytes[0] != 46, bytes[0] != 45 else {
            throw CLIError("invalid \(what) '\(name)': use 1-128 letters, digits, '.', '_' or '-', not starting with '.' or '-'",
                           status: .usage)
        }
        return name
    }
}
