import CLinux
import Glibc
import MLCredAPI
import MLCredClient

/// `mlcred run`'s engine: starts the job with its credentials, relays (and masks) its output,
/// renews the token while it runs, and revokes everything when it ends.
struct JobRunner {
    let client: MLCredClient
    /// The run's tokens, one per role.
    let roles: RoleSet
    /// The roles' credentials, merged.
    let credentials: CredentialsResponse
    /// AWS grant → the credentials answer holding its first STS session (minted before the job starts).
    let heldAWSAnswers: [String: [UInt8]]
    let mask: Bool
    let command: [String]
    /// The lifetime asked for with --ttl, used again at each renewal.
    var ttl: String? = nil

    /// How long revocation is retried after the job ends (SPEC §8).
    static let revokeRetrySeconds = 30.0
    /// How long output is still relayed after the job exits (background children may hold the pipe).
    static let drainSeconds = 2.0

    /// Runs the job; returns its exit code (128+N for signal N).
    func run() throws -> Int32 {
        var environment = currentEnvironment()
        // The private directory holds the job's socket (always) and the AWS config (with AWS grants).
        let files = try JobFiles()
        defer { files.remove() }
        // Values that are not secret (a region, a host, a port) stay readable in the output.
        let plain = Set(credentials.plain ?? [])
        let secrets = credentials.env.filter { !plain.contains($0.key) }.map(\.value) + roles.tokens
            + heldAWSAnswers.values.flatMap(RunSocket.credentialValues(in:))
        // One masker for stdout and stderr together: a value split between them, or across a
        // close of one, reassembles in any `2>&1` log (issue 13 finding 4).
        let masker = OutputMasker(values: secrets)
        let awsGrants = credentials.aws ?? []
        let runSocket = try RunSocket(
            path: try files.path(for: "mlcred.sock"), daemonSocket: absolutePath(client.socketPath), tokens: roles.tokens,
            grantTokens: roles.grantTokens, awsGrants: Set(awsGrants.map(\.grant)), defaultAWSGrant: awsGrants.first?.grant,
            learn: { values in if mask { masker.add(values) } })
        for (grant, answer) in heldAWSAnswers { runSocket.hold(grant: grant, answer: answer) }
        if !awsGrants.isEmpty {
            // AWS reaches the job as a config whose credential_process calls this binary, answered
            // by this process from the session it holds (SPEC §6, §8); keys in the environment would shadow it.
            for name in AWSConfigFile.shadowingVariables { environment[name] = nil }
            environment["AWS_CONFIG_FILE"] = try files.write("aws-config", try AWSConfigFile.render(grants: awsGrants, executable: AWSConfigFile.executablePath()))
            // An empty credentials file: a [default] in ~/.aws/credentials would win over credential_process.
            environment["AWS_SHARED_CREDENTIALS_FILE"] = try files.write("aws-credentials", "")
        }
        for (key, value) in credentials.env { environment[key] = value }
        environment["MLCRED_TOKEN"] = roles.tokens[0]
        environment["MLCRED_SOCKET"] = runSocket.path
        environment["MLCRED_ROLE"] = roles.roleNames
        environment["MLCRED_EXPIRES_AT"] = roles.earliestExpiry

        // With masking and a terminal on both ends, the job gets a terminal of its own (a pty)
        // so interactive programs keep working; its output is masked on the way out.
        let useTerminal = mask && isatty(0) == 1 && isatty(1) == 1
        var outPipe: [Int32] = [-1, -1]
        var errPipe: [Int32] = [-1, -1]
        var terminal: (master: Int32, slave: Int32) = (-1, -1)
        if useTerminal {
            guard mlc_openpty(&terminal.master, &terminal.slave, 1) == 0 else {
                throw CLIError("cannot open a pseudo-terminal for the job")
            }
        } else if mask {
            guard mlc_pipe_cloexec(&outPipe) == 0, mlc_pipe_cloexec(&errPipe) == 0 else {
                throw CLIError("cannot create pipes for the job's output")
            }
        }
        var execErrno: Int32 = 0
        mlc_prepare_signal_forwarding()
        let pid = withCStrings(command) { argv in
            withCStrings(environment.map { "\($0.key)=\($0.value)" }) { envp in
                mlc_spawn(command[0], argv, envp, outPipe[1], errPipe[1], terminal.slave, &execErrno)
            }
        }
        if useTerminal {
            close(terminal.slave)
        } else if mask {
            close(outPipe[1])
            close(errPipe[1])
        }
        guard pid > 0 else {
            revokeWithRetry()
            // As shells do: 127 when the command is not found, 126 when it cannot be executed.
            Terminal.err("mlcred: error: cannot run \(command[0]): \(String(cString: strerror(execErrno))) (hint: check the command name and PATH)\n")
            return execErrno == ENOENT ? 127 : 126
        }
        mlc_forward_signals(pid)
        let pidfd = mlc_pidfd_open(pid)

        var streams: [(fd: Int32, target: Int32)] = []
        var stdinOpen = false
        if useTerminal {
            streams = [(terminal.master, 1)]
            _ = mlc_make_raw(0)
            mlc_watch_winch()
            stdinOpen = true
        } else if mask {
            streams = [(outPipe[0], 1), (errPipe[0], 2)]
        }
        var renewAt = renewTime(expiresAt: roles.earliestExpiry)
        var exited = false
        var exitedAt = 0.0
        var status: Int32 = 0
        while !exited || !streams.isEmpty {
            if exited && now() - exitedAt > Self.drainSeconds {
                // The job is gone; whatever still writes (a background child) keeps no credential alive.
                break
            }
            if useTerminal && mlc_take_winch() != 0 { mlc_copy_winsize(1, terminal.master) }
            var fds = streams.map { pollfd(fd: $0.fd, events: Int16(POLLIN), revents: 0) }
            if !exited && pidfd >= 0 { fds.append(pollfd(fd: pidfd, events: Int16(POLLIN), revents: 0)) }
            let stdinIndex = fds.count
            if stdinOpen && !exited { fds.append(pollfd(fd: 0, events: Int16(POLLIN), revents: 0)) }
            let socketIndex = fds.count
            let socketFDs = runSocket.pollDescriptors
            fds += socketFDs.map { pollfd(fd: $0, events: Int16(POLLIN), revents: 0) }
            let waitMillis: Int32 = exited ? 100 : (pidfd >= 0 ? Int32(max(10, min(1000, (renewAt - now()) * 1000))) : 50)
            let ready = poll(&fds, nfds_t(fds.count), waitMillis)
            if ready < 0 && errno != EINTR { break }
            if exited && ready == 0 { break }  // the job is gone and its output has gone quiet
            // The job's requests first, so values it fetched are masked in output read in this round.
            if ready > 0 {
                for (offset, fd) in socketFDs.enumerated() where fds[socketIndex + offset].revents != 0 {
                    runSocket.service(fd)
                }
            }
            var closed: [Int] = []
            for (index, stream) in streams.enumerated() where ready > 0 && fds[index].revents != 0 {
                var buffer = [UInt8](repeating: 0, count: 65536)
                let count = read(stream.fd, &buffer, buffer.count)
                if count > 0 {
                    var broken = false
                    for piece in masker.process(Array(buffer.prefix(count)), from: stream.target) where !writeAll(piece.target, piece.bytes) {
                        broken = broken || piece.target == stream.target
                    }
                    if broken {
                        // Our reader went away (e.g. `| head`): close the job's pipe so its next
                        // write fails as it would have without run in between.
                        closed.append(index)
                    }
                } else if count == 0 || (errno != EINTR && errno != EAGAIN) {
                    closed.append(index)  // EOF, or EIO from a pty whose job side is gone
                }
            }
            if stdinOpen && !exited && ready > 0 && stdinIndex < fds.count && fds[stdinIndex].revents != 0 {
                var buffer = [UInt8](repeating: 0, count: 4096)
                let count = read(0, &buffer, buffer.count)
                if count > 0 {
                    _ = writeAll(terminal.master, Array(buffer.prefix(count)))
                } else if count == 0 || errno != EINTR {
                    stdinOpen = false
                }
            }
            for index in closed.reversed() {
                close(streams[index].fd)
                streams.remove(at: index)
            }
            if streams.isEmpty {
                for piece in masker.flush() { _ = writeAll(piece.target, piece.bytes) }
            }
            if !exited {
                var raw: Int32 = 0
                if waitpid(pid, &raw, WNOHANG) == pid {
                    exited = true
                    exitedAt = now()
                    status = raw
                } else if now() >= renewAt {
                    renewAt = renew() ?? .infinity
                }
            }
        }
        for piece in masker.flush() { _ = writeAll(piece.target, piece.bytes) }
        for stream in streams { close(stream.fd) }
        if !exited {
            waitpid(pid, &status, 0)
        }
        if pidfd >= 0 { close(pidfd) }
        if useTerminal { mlc_restore_terminal() }
        revokeWithRetry()
        runSocket.close()  // after the revocation: the socket outlives nothing it could serve
        if status & 0x7F == 0 { return (status >> 8) & 0xFF }  // WIFEXITED → WEXITSTATUS
        return 128 + (status & 0x7F)  // killed by a signal
    }

    /// Renews every token; returns when to renew next, or nil to stop renewing.
    private func renew() -> Double? {
        var next: Double? = nil
        for member in roles.members {
            do {
                let info: TokenInfo = try client.call("POST", "/v1/tokens/renew", body: RenewRequest(ttl: ttl), bearer: member.token.token)
                if info.expiresAt == info.maxExpiresAt {
                    Terminal.err("mlcred: warning: the token of role '\(member.token.role)' reached the role's max_ttl: it and its credentials end at \(info.expiresAt)\n")
                    continue
                }
                next = min(next ?? .infinity, renewTime(expiresAt: info.expiresAt))
            } catch {
                Terminal.err("mlcred: warning: could not renew the token of role '\(member.token.role)': \(error)\n")
                next = min(next ?? .infinity, now() + 30)
            }
        }
        return next
    }

    /// Two thirds of the remaining life from now.
    private func renewTime(expiresAt: String) -> Double {
        guard let expiry = Timestamp.parse(expiresAt) else { return .infinity }
        return now() + max(1, (expiry - now()) * 2 / 3)
    }

    /// Revokes every token and its leases, retrying until the daemon confirms (or says it is
    /// already gone) for up to 30 s.
    private func revokeWithRetry() {
        let deadline = now() + Self.revokeRetrySeconds
        for member in roles.members {
            while true {
                do {
                    let raw = try client.callRaw("POST", "/v1/tokens/revoke", body: Optional<String>.none, bearer: member.token.token)
                    // Decoding costs a few ms in a static binary (first-use type lookups): only when there is something to say.
                    if !String(decoding: raw, as: UTF8.self).contains("\"unconfirmed\":[]"),
                       let answer = try? APIJSON.decode(RevocationResponse<Bool>.self, from: raw) {
                        RevocationWarnings.print(unconfirmed: answer.unconfirmed)
                    }
                    break
                } catch ClientError.api(_, let code, _, _) where code == .unauthenticated {
                    break  // already revoked or expired
                } catch {
                    if now() >= deadline {
                        Terminal.err("mlcred: warning: could not confirm the revocation of the token of role '\(member.token.role)' (\(error)); the daemon revokes it when it sees this process gone, at the latest at \(member.token.expiresAt)\n")
                        break
                    }
                    usleep(500_000)
                }
            }
        }
    }

    private func now() -> Double {
        var spec = timespec()
        clock_gettime(CLOCK_REALTIME, &spec)
        return Double(spec.tv_sec) + Double(spec.tv_nsec) / 1e9
    }

    /// Writes everything; false when the reader is gone (EPIPE) or the write fails.
    private func writeAll(_ fd: Int32, _ bytes: [UInt8]) -> Bool {
        var offset = 0
        while offset < bytes.count {
            let n = bytes[offset...].withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
            if n <= 0 {
                if errno == EINTR { continue }
                return false
            }
            offset += n
        }
        return true
    }
}

/// The process environment as a dictionary.
func currentEnvironment() -> [String: String] {
    var out: [String: String] = [:]
    var pointer = environ
    while let entry = pointer.pointee {
        let text = String(cString: entry)
        if let equals = text.firstIndex(of: "=") {
            out[String(text[..<equals])] = String(text[text.index(after: equals)...])
        }
        pointer += 1
    }
    return out
}

func absolutePath(_ path: String) -> String {
    if path.hasPrefix("/") { return path }
    var buffer = [CChar](repeating: 0, count: Int(PATH_MAX))
    guard getcwd(&buffer, buffer.count) != nil else { return path }
    return String(cString: buffer) + "/" + path
}

/// Calls `body` with a NULL-terminated C array of `strings`.
func withCStrings<R>(_ strings: [String], _ body: (UnsafePointer<UnsafeMutablePointer<CChar>?>) -> R) -> R {
    let pointers = strings.map { strdup($0) } + [nil]
    defer { for pointer in pointers { free(pointer) } }
    return pointers.withUnsafeBufferPointer { buffer in
        // A non-empty array (it always holds the terminating nil) has a base address.
        guard let base = buffer.baseAddress else { preconditionFailure("empty C string array") }
        return body(base)
    }
}
