/// The two verbs run most often, parsed without ArgumentParser: `mlcred run` (every job) and
/// `mlcred credential-process` (every AWS SDK refresh). Building ArgumentParser's command tree
/// reflects over every command type, about 2.5 ms of a static binary's start, a quarter of
/// what `run` adds to a job. Only the plain forms are taken here; anything else (help, a
/// `--opt=value` form, an unknown or repeated option, a bad --ttl, a missing value) returns nil
/// and goes to ArgumentParser, which accepts or refuses it with its own messages. A `--socket`
/// typed before the verb arrives here already moved after it (`GlobalOptions.hoisted`).
enum FastPath {
    enum Job {
        case run(RunJob)
        case credentialProcess(CredentialProcessJob)

        func run() throws {
            switch self {
            case .run(let job): try job.run()
            case .credentialProcess(let job): try job.run()
            }
        }
    }

    static func parse(_ arguments: [String]) -> Job? {
        guard arguments.count >= 2 else { return nil }
        let rest = Array(arguments.dropFirst(2))
        switch arguments[1] {
        case "run": return parseRun(rest).map(Job.run)
        case "credential-process": return parseCredentialProcess(rest).map(Job.credentialProcess)
        default: return nil
        }
    }

    /// `[--socket S] --role R [--role R2...] [--ttl D] [--no-mask] [--] CMD [ARG...]`, options in any order;
    /// the first word that is not an option starts CMD (as ArgumentParser's passthrough does).
    static func parseRun(_ arguments: [String]) -> RunJob? {
        var values: [String: String] = [:]
        var roles: [String] = []
        var noMask = false
        var index = 0
        while index < arguments.count {
            let word = arguments[index]
            if word == "--" {
                index += 1
                break
            }
            guard word.hasPrefix("-") else { break }
            switch word {
            case "--no-mask":
                guard !noMask else { return nil }
                noMask = true
                index += 1
            case "--role":
                guard index + 1 < arguments.count, !arguments[index + 1].hasPrefix("-"), !roles.contains(arguments[index + 1]) else { return nil }
                roles.append(arguments[index + 1])
                index += 2
            case "--ttl", "--socket":
                guard values[word] == nil, index + 1 < arguments.count, !arguments[index + 1].hasPrefix("-") else { return nil }
                values[word] = arguments[index + 1]
                index += 2
            default:
                return nil
            }
        }
        let command = Array(arguments[index...])
        guard (try? RoleOption.check(roles)) != nil, !command.isEmpty, (try? TTLOption.check(values["--ttl"])) != nil else { return nil }
        return RunJob(socket: values["--socket"], roles: roles, ttl: values["--ttl"], noMask: noMask, command: command)
    }

    /// `[--socket S] [--grant G]`.
    static func parseCredentialProcess(_ arguments: [String]) -> CredentialProcessJob? {
        var values: [String: String] = [:]
        var index = 0
        while index < arguments.count {
            let word = arguments[index]
            guard word == "--grant" || word == "--socket", values[word] == nil, index + 1 < arguments.count,
                  !arguments[index + 1].hasPrefix("-") else { return nil }
            values[word] = arguments[index + 1]
            index += 2
        }
        return CredentialProcessJob(socket: values["--socket"], grant: values["--grant"])
    }
}
