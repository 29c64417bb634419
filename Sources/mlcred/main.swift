import ArgumentParser
import CLinux
import Glibc
import MLCredClient
import MLCredPolicy

/// Runs `body` and maps every failure to SPEC §5's one-line errors and exit codes.
func runReportingErrors(_ body: () throws -> Void) -> Never {
    do {
        try body()
    } catch let error as CLIError {
        Terminal.err("mlcred: error: \(error.message)\(error.hint.map { " (hint: \($0))" } ?? "")\n")
        exit(error.status.rawValue)
    } catch let error as ClientError {
        let mapped = CLIError.from(error)
        Terminal.err("mlcred: error: \(mapped.message)\(mapped.hint.map { " (hint: \($0))" } ?? "")\n")
        exit(mapped.status.rawValue)
    } catch let error as ExitCode {
        exit(error.rawValue)
    } catch {
        // A command group run without a subcommand asks for its help: print it, exit 0.
        if MLCred.exitCode(for: error) == .success {
            Terminal.out(MLCred.fullMessage(for: error) + "\n")
            exit(0)
        }
        Terminal.err("mlcred: error: \(MLCred.message(for: error))\n")
        exit(ExitStatus.error.rawValue)
    }
    exit(0)
}

// Entry point. `--socket`/`--json` typed before the verb are moved after it (GlobalOptions);
// `run` and `credential-process` in their plain forms then skip ArgumentParser (FastPath).
signal(SIGPIPE, SIG_IGN)
let arguments = GlobalOptions.hoisted(CommandLine.arguments)
// The installed mlcred is setgid to the run group, which the daemon takes as "this is mlcred
// run" (phi roles, SPEC §3): every other verb gives it up before it connects anywhere.
if arguments.count < 2 || arguments[1] != "run" {
    guard mlc_drop_setgid() == 0 else {
        Terminal.err("mlcred: error: cannot drop the run group (setresgid failed)\n")
        exit(ExitStatus.error.rawValue)
    }
}
if let job = FastPath.parse(arguments) {
    runReportingErrors { try job.run() }
}
do {
    var command = try MLCred.parseAsRoot(Array(arguments.dropFirst()))
    runReportingErrors { try command.run() }
} catch {
    // Parsing: --help and --version succeed; everything else is a usage error (exit 2).
    if MLCred.exitCode(for: error) == .success {
        Terminal.out(MLCred.fullMessage(for: error) + "\n")
        exit(0)
    }
    let message = MLCred.message(for: error).split(separator: "\n").first.map(String.init) ?? "invalid usage"
    Terminal.err("mlcred: error: \(message) (hint: see '\(Invocation.helpCommand) --help')\n")
    exit(ExitStatus.usage.rawValue)
}
