import ArgumentParser

/// SPEC §5: `--socket PATH` and `--json` are accepted before the verb as well as after it
/// (`mlcred --socket S status` = `mlcred status --socket S`). ArgumentParser takes a
/// subcommand's options only after its name, so the ones typed before the verb are moved
/// right after the verb path before parsing. A verb that does not take one refuses it as an
/// unknown option (a usage error), as it would after the verb.
enum GlobalOptions {
    /// `arguments` (argv, program name first) with the `--socket`/`--json` options found before
    /// the verb moved after the verb path: `mlcred --socket S token list` becomes
    /// `mlcred token list --socket S`. `--socket=S` becomes `--socket S`, the form the fast
    /// path takes. Any other word before the verb ends the scan and the arguments are left as
    /// typed, for ArgumentParser to answer (`--help`, `--version`) or refuse (exit 2).
    static func hoisted(_ arguments: [String]) -> [String] {
        // The common case, a verb first (every job's `mlcred run`), costs one comparison.
        guard arguments.count >= 2, arguments[1].hasPrefix("-") else { return arguments }
        var moved: [String] = []
        var index = 1
        scan: while index < arguments.count {
            let word = arguments[index]
            switch word {
            case "--json":
                moved.append(word)
                index += 1
            case "--socket":
                moved.append(word)
                index += 1
                // A missing value stays missing: the verb's parser then names the option.
                if index < arguments.count, !arguments[index].hasPrefix("-") {
                    moved.append(arguments[index])
                    index += 1
                }
            case _ where word.hasPrefix("--socket="):
                let value = String(word.dropFirst("--socket=".count))
                moved += value.isEmpty || value.hasPrefix("-") ? [word] : ["--socket", value]
                index += 1
            default:
                break scan
            }
        }
        let verbEnd = endOfVerbPath(arguments, from: index)
        guard !moved.isEmpty, verbEnd > index else { return arguments }
        return [arguments[0]] + arguments[index..<verbEnd] + moved + arguments[verbEnd...]
    }

    /// The index just past the subcommand names that start at `start` (`token list` in
    /// `token list --json`), following `mlcred`'s command tree.
    static func endOfVerbPath(_ arguments: [String], from start: Int) -> Int {
        var command: any ParsableCommand.Type = MLCred.self
        var index = start
        while index < arguments.count,
              let next = command.configuration.subcommands.first(where: { $0.configuration.commandName == arguments[index] }) {
            command = next
            index += 1
        }
        return index
    }
}
