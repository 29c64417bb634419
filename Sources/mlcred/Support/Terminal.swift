import Glibc
import MLCredAPI

/// Output and input helpers for the CLI: stdout/stderr, JSON printing, secret input without echo.
enum Terminal {
    static func out(_ text: String) {
        write(1, text)
    }

    static func err(_ text: String) {
        write(2, text)
    }

    private static func write(_ fd: Int32, _ text: String) {
        let bytes = Array(text.utf8)
        var offset = 0
        while offset < bytes.count {
            let n = bytes[offset...].withUnsafeBytes { Glibc.write(fd, $0.baseAddress, $0.count) }
            if n <= 0 { if errno == EINTR { continue } else { return } }
            offset += n
        }
    }

    /// Prints raw JSON bytes from the daemon re-indented for people, with sorted keys.
    static func printJSON<T: Encodable>(_ value: T) throws {
        out(String(decoding: try APIJSON.encodePretty(value), as: UTF8.self) + "\n")
    }

    /// Reads all of standard input.
    static func readStandardInput(limit: Int = 1 << 20) throws -> [UInt8] {
        try readAll(fd: 0, what: "standard input", limit: limit)
    }

    /// Reads a whole file.
    static func readFile(_ path: String, limit: Int = 1 << 20) throws -> [UInt8] {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else {
            throw CLIError("cannot read \(path): \(String(cString: strerror(errno)))", hint: "check the path and its permissions")
        }
        defer { close(fd) }
        return try readAll(fd: fd, what: path, limit: limit)
    }

    private static func readAll(fd: Int32, what: String, limit: Int) throws -> [UInt8] {
        var data: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 65536)
        while true {
            let n = read(fd, &chunk, chunk.count)
            if n == 0 { break }
            if n < 0 {
                if errno == EINTR { continue }
                throw CLIError("cannot read \(what): \(String(cString: strerror(errno)))")
            }
            data.append(contentsOf: chunk.prefix(n))
            if data.count > limit { throw CLIError("\(what) is larger than \(limit / 1024) KiB") }
        }
        return data
    }

    /// Removes one trailing newline (`\n` or `\r\n`), as editors and `echo` add one.
    static func chompNewline(_ bytes: [UInt8]) -> [UInt8] {
        var bytes = bytes
        if bytes.last == 10 { bytes.removeLast() }
        if bytes.last == 13 { bytes.removeLast() }
        return bytes
    }

    /// Prompts on the controlling terminal with echo off. Throws if there is no terminal.
    static func readHidden(prompt: String) throws -> [UInt8] {
        let tty = open("/dev/tty", O_RDWR | O_CLOEXEC)
        guard tty >= 0 else {
            throw CLIError("no terminal to ask for the passphrase on", hint: "use --passphrase-stdin or --passphrase-file", status: .usage)
        }
        defer { close(tty) }
        var original = termios()
        tcgetattr(tty, &original)
        var silent = original
        silent.c_lflag &= ~tcflag_t(ECHO)
        tcsetattr(tty, TCSAFLUSH, &silent)
        defer {
            tcsetattr(tty, TCSAFLUSH, &original)
            _ = Glibc.write(tty, "\n", 1)
        }
        _ = prompt.withCString { Glibc.write(tty, $0, strlen($0)) }
        var line: [UInt8] = []
        var byte: UInt8 = 0
        while read(tty, &byte, 1) == 1, byte != 10 {
            line.append(byte)
        }
        return chompNewline(line + [10])
    }

    /// `count` bytes from the kernel's CSPRNG.
    static func readRandom(count: Int) throws -> [UInt8] {
        let fd = open("/dev/urandom", O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw CLIError("cannot open /dev/urandom") }
        defer { close(fd) }
        var bytes = [UInt8](repeating: 0, count: count)
        guard read(fd, &bytes, count) == count else { throw CLIError("cannot read random bytes from /dev/urandom") }
        return bytes
    }

    static var standardInputIsTerminal: Bool { isatty(0) == 1 }

    /// Reads standard input to its end with the terminal's echo off, so a secret typed or
    /// pasted at a terminal never shows on screen (or in a recorded session).
    static func readStandardInputHidden(limit: Int) throws -> [UInt8] {
        var original = termios()
        guard tcgetattr(0, &original) == 0 else { return try readStandardInput(limit: limit) }
        var silent = original
        silent.c_lflag &= ~tcflag_t(ECHO)
        tcsetattr(0, TCSANOW, &silent)
        defer {
            tcsetattr(0, TCSANOW, &original)
            err("\n")
        }
        return try readStandardInput(limit: limit)
    }
}
