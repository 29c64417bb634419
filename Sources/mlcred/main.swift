import ArgumentParser
import Glibc
import MLCredClient

// Entry point: parses, runs, and maps every failure to SPEC §5's one-line errors and exit codes.
signal(SIGPIPE, SIG_IGN)
do {
    var command = try MLCred.parseAsRoot()
    do {
        try command.run()
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
} catch {
    // Parsing: --help and --version succeed; everything else is a usage error (exit 2).
    if MLCred.exitCode(for: error) == .success {
        Terminal.out(MLCred.fullMessage(for: error) + "\n")
        exit(0)
    }
    let message = MLCred.message(for: error).split(separator: "\n").first.map(String.init) ?? "invalid usage"
    Terminal.err("mlcred: error: \(message) (hint: see 'mlcred help')\n")
    exit(ExitStatus.usage.rawValue)
}
exit(0)
