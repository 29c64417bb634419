/// The command as the user typed it, for messages that name it: `mlcred secret list` (the verb
/// path, without options or arguments), whichever side of the verb `--socket`/`--json` went.
enum Invocation {
    static let typedCommand: String = {
        let arguments = GlobalOptions.hoisted(CommandLine.arguments)
        let end = GlobalOptions.endOfVerbPath(arguments, from: 1)
        return (["mlcred"] + arguments[1..<max(1, end)]).joined(separator: " ")
    }()
}
