/// The command as the user typed it, for messages that name it: `mlcred secret list` (the verb
/// path, without options or arguments), whichever side of the verb `--socket`/`--json` went.
enum Invocation {
    static let typedCommand: String = {
        let arguments = GlobalOptions.hoisted(CommandLine.arguments)
        let end = GlobalOptions.endOfVerbPath(arguments, from: 1)
        return (["mlcred"] + arguments[1..<max(1, end)]).joined(separator: " ")
    }()

    /// The command whose help explains a parse error of `typedCommand`: a command with a default
    /// subcommand (`mlcred token` is `mlcred token issue`) parsed its options as that one's.
    static let helpCommand: String = {
        let defaults = ["mlcred token": "mlcred token issue"]
        return defaults[typedCommand] ?? typedCommand
    }()
}
