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
            return CLIError("cannot reach mlcredd at \(path): \(reason)",
                            hint: "start mlcredd (or mlcredd --dev), or point --socket / MLCRED_SOCKET at its socket", status: .unreachable)
        case .protocolError(let message):
            return CLIError("unexpected answer from mlcredd: \(message)", hint: "check that the socket belongs to mlcredd of the same version")
        case .apiDetailed(let status, let code, let message, _):
            return from(.api(status: status, code: code, message: message))
        case .api(_, let code, let message):
            switch code {
            case .denied:
                let hint = message.contains("admin") ? "run as root, as the daemon's user, or as a member of its admin group"
                    : "'mlcred whoami' lists the roles you may assume here"
                return CLIError(message, hint: hint, status: .denied)
            case .sealed:
                return CLIError(message, hint: "an admin must run 'mlcred vault unseal'", status: .sealed)
            case .uninitialized:
                return CLIError(message, hint: "an admin must run 'mlcred vault init'", status: .sealed)
            case .badRequest:
                return CLIError(message, hint: "see 'mlcred help' for this command")
            case .notFound:
                return CLIError(message, hint: "'mlcred secret list' shows what exists")
            case .conflict:
                return CLIError(message, hint: "check 'mlcred status'")
            case .tooLarge:
                return CLIError(message, hint: "request bodies are limited to 64 KiB")
            case .rateLimited:
                return CLIError(message, hint: "wait and try again")
            case .unauthenticated:
                return CLIError(message, hint: "obtain a new token")
            case .internal, .upstream:
                return CLIError(message, hint: "the daemon's log has details")
            }
        }
    }
}
