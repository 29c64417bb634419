import ArgumentParser
import Glibc
import MLCredAPI
import MLCredClient

struct VaultCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "vault", abstract: "Initialize, unseal and seal the vault (admin).",
        subcommands: [VaultInit.self, VaultUnseal.self, VaultSeal.self, VaultRekey.self, VaultBackup.self, VaultRotate.self])
}

/// Where a passphrase comes from: never argv, which any user can read in `ps`.
struct PassphraseOptions: ParsableArguments {
    @Flag(help: "Read the passphrase from standard input (one trailing newline is removed).")
    var passphraseStdin = false

    @Option(help: "Read the passphrase from this file (one trailing newline is removed).")
    var passphraseFile: String?

    func validate() throws {
        if passphraseStdin && passphraseFile != nil {
            throw ValidationError("give at most one of --passphrase-stdin and --passphrase-file")
        }
    }

    var given: Bool { passphraseStdin || passphraseFile != nil }

    /// The passphrase from stdin, a file, or (when `prompt`) a no-echo prompt; nil if none was asked for.
    func read(prompt: Bool, confirm: Bool, label: String = "Vault passphrase: ") throws -> String? {
        try Self.read(stdin: passphraseStdin, file: passphraseFile, prompt: prompt, confirm: confirm, label: label)
    }

    /// A passphrase from stdin, `file`, or (when `prompt`) a no-echo prompt labelled `label`.
    static func read(stdin: Bool, file: String?, prompt: Bool, confirm: Bool, label: String) throws -> String? {
        var bytes: [UInt8]
        if stdin {
            bytes = Terminal.chompNewline(try Terminal.readStandardInput(limit: 4096))
        } else if let file {
            bytes = Terminal.chompNewline(try Terminal.readFile(file, limit: 4096))
        } else if prompt {
            bytes = try Terminal.readHidden(prompt: label)
            if confirm {
                let again = try Terminal.readHidden(prompt: "Repeat the passphrase: ")
                guard again == bytes else { throw CLIError("the passphrases differ", hint: "run the command again", status: .usage) }
            }
        } else {
            return nil
        }
        guard !bytes.isEmpty else { throw CLIError("the passphrase is empty", hint: "check the input you gave", status: .usage) }
        guard let text = String(validating: bytes, as: UTF8.self) else {
            throw CLIError("the passphrase is not valid UTF-8", status: .usage)
        }
        return text
    }
}

/// Reads or creates a 32-byte key file.
enum KeyFileIO {
    static func read(_ path: String) throws -> [UInt8] {
        let bytes = try Terminal.readFile(path, limit: 1024)
        if bytes.count == 32 { return bytes }
        let text = String(decoding: Terminal.chompNewline(bytes), as: UTF8.self)
        if let decoded = Base64.decode(text), decoded.count == 32 { return decoded }
        throw CLIError("\(path) is not a key file: it must hold 32 bytes (raw or base64)", status: .usage)
    }

    /// Creates `path` with 32 fresh random bytes, mode 0400, failing if it exists.
    static func create(_ path: String) throws -> [UInt8] {
        let key = try Terminal.readRandom(count: 32)
        try NewFile.write(key[...], to: path, mode: 0o400, hint: "choose a new path in a private directory")
        return key
    }
}

struct VaultInit: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "init",
        abstract: "Create the vault's root key and leave the vault unsealed (admin).",
        discussion: """
            The root key is stored only wrapped: under a key derived from the passphrase
            (Argon2id) and/or under a 32-byte key file. With --key-file F, F is used if it
            exists, otherwise created with 32 random bytes (mode 0400). Without any
            option, the passphrase is asked for.

            Examples:
              mlcred vault init
              mlcred vault init --passphrase-file /root/vault-pass --key-file /root/mlcred-unseal.key
            """)

    @OptionGroup var connection: ConnectionOptions
    @OptionGroup var passphrase: PassphraseOptions
    @Option(help: "Also (or only) wrap the root key under this 32-byte key file; created if missing.")
    var keyFile: String?
    @Option(help: "Split the unseal key into this many Shamir shares (2-255): they replace the passphrase.")
    var shares: Int?
    @Option(help: "How many different admins' shares unseal (2 to --shares).")
    var threshold: Int?
    @Option(help: "Write the shares to these files (comma-separated, one per share, created 0600) instead of printing them.")
    var shareFiles: String?
    @OptionGroup var output: OutputOptions

    func validate() throws {
        if (shares == nil) != (threshold == nil) { throw ValidationError("give --shares and --threshold together") }
        if shares != nil && passphrase.given { throw ValidationError("with --shares the shares are the unlock: give no passphrase") }
        if let shares, let threshold, !(2...255).contains(shares) || threshold < 2 || threshold > shares {
            throw ValidationError("--shares must be 2-255 and --threshold 2 to --shares")
        }
        if let shareFiles {
            guard let shares else { throw ValidationError("--share-files needs --shares") }
            let files = shareFiles.split(separator: ",").map(String.init)
            guard files.count == shares, Set(files).count == shares else {
                throw ValidationError("--share-files must name \(shares) different files")
            }
        }
    }

    func run() throws {
        let client = try connection.clientForSecrets()
        let files = shareFiles.map { $0.split(separator: ",").map(String.init) } ?? []
        for file in files where access(file, F_OK) == 0 {
            throw CLIError("\(file) exists", hint: "share files are created new: choose paths that do not exist", status: .usage)
        }
        let text = try passphrase.read(prompt: keyFile == nil && shares == nil, confirm: true)
        var key: [UInt8]?
        var created = false
        if let keyFile {
            if access(keyFile, F_OK) == 0 {
                key = try KeyFileIO.read(keyFile)
            } else {
                key = try KeyFileIO.create(keyFile)
                created = true
            }
        }
        let state: VaultStateResponse = try client.call("POST", "/v1/vault/init",
                                                        body: VaultKeyRequest(passphrase: text, key: key.map(Base64.encode),
                                                                              shares: shares, threshold: threshold))
        let shareTexts = state.shares ?? []
        for (file, share) in zip(files, shareTexts) {
            try NewFile.write(Array((share + "\n").utf8)[...], to: file,
                              lost: "the vault is initialized: its shares are lost, start over with a new state directory")
        }
        if output.json {
            var shown = state
            if !files.isEmpty { shown.shares = nil }
            return try Terminal.printJSON(shown)
        }
        Terminal.out("vault initialized and unsealed\n")
        if let threshold, let shares {
            if files.isEmpty {
                Terminal.out("\(shares) unseal shares follow, \(threshold) of which unseal. Give each to a different admin now: they are shown this once and stored nowhere.\n")
                for (index, share) in shareTexts.enumerated() { Terminal.out("share \(index + 1): \(share)\n") }
            } else {
                Terminal.out("wrote \(shares) shares (\(threshold) unseal) to \(files.joined(separator: ", ")): hand each file to a different admin, then delete it\n")
            }
        }
        if created, let keyFile { Terminal.out("wrote a new key file \(keyFile): keep it secret, it unseals this vault\n") }
    }
}

struct VaultUnseal: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "unseal",
        abstract: "Unseal the vault with its passphrase or key file (admin).",
        discussion: "A wrong passphrase is audited and answered after a delay that doubles per failure (up to 30 s).")

    @OptionGroup var connection: ConnectionOptions
    @OptionGroup var passphrase: PassphraseOptions
    @Option(help: "Unseal with this 32-byte key file instead of the passphrase.")
    var keyFile: String?
    @Flag(help: "Bring one Shamir share (from standard input or a prompt); the threshold's admins each bring one.")
    var share = false
    @Flag(help: "Forget the shares brought so far.")
    var reset = false
    @OptionGroup var output: OutputOptions

    func validate() throws {
        if keyFile != nil && passphrase.given { throw ValidationError("give a passphrase or --key-file, not both") }
        if (share || reset) && (keyFile != nil || passphrase.given) { throw ValidationError("--share and --reset take no passphrase or key file") }
        if share && reset { throw ValidationError("give --share or --reset, not both") }
    }

    func run() throws {
        let client = try connection.clientForSecrets()
        if reset {
            let state: VaultStateResponse = try client.call("POST", "/v1/vault/unseal", body: VaultKeyRequest(passphrase: nil, key: nil, reset: true))
            if output.json { return try Terminal.printJSON(state) }
            return Terminal.out("forgot the shares brought so far\n")
        }
        if share {
            let bytes = Terminal.standardInputIsTerminal
                ? try Terminal.readHidden(prompt: "Unseal share: ")
                : Terminal.chompNewline(try Terminal.readStandardInput(limit: 4096))
            let text = String(decoding: bytes, as: UTF8.self)
            let state: VaultStateResponse = try client.call("POST", "/v1/vault/unseal", body: VaultKeyRequest(passphrase: nil, key: nil, share: text))
            if output.json { return try Terminal.printJSON(state) }
            if let progress = state.progress, progress.sealed {
                return Terminal.out("share accepted: \(progress.received) of \(progress.threshold) (of \(progress.shares) shares); \(progress.threshold - progress.received) more admin\(progress.threshold - progress.received == 1 ? "" : "s") must bring one within 10 minutes\n")
            }
            return Terminal.out("vault unsealed\n")
        }
        let key = try keyFile.map(KeyFileIO.read)
        let text = key == nil ? try passphrase.read(prompt: true, confirm: false) : nil
        let state: VaultStateResponse = try client.call("POST", "/v1/vault/unseal",
                                                        body: VaultKeyRequest(passphrase: text, key: key.map(Base64.encode)))
        if output.json { return try Terminal.printJSON(state) }
        Terminal.out("vault unsealed\n")
    }
}

struct VaultRekey: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "rekey",
        abstract: "Replace the passphrase and/or the key file that unseal the vault (admin).",
        discussion: """
            Proves the current unlock first (the passphrase, or --key-file), then wraps the
            root key under the new one(s) in one transaction: a crash leaves the old unlock or
            the new one, never neither. The old passphrase (or key file) stops working at once;
            an unlock not replaced keeps working. The data keys do not change. Audited as
            vault.rekey. Without options, both passphrases are asked for.

            Examples:
              mlcred vault rekey
              mlcred vault rekey --passphrase-file old.txt --new-passphrase-stdin < new.txt
              mlcred vault rekey --key-file old.key --new-key-file /root/new-unseal.key
            """)

    @OptionGroup var connection: ConnectionOptions
    @OptionGroup var passphrase: PassphraseOptions
    @Option(help: "Prove the current unlock with this key file instead of the passphrase.")
    var keyFile: String?
    @Flag(help: "Read the new passphrase from standard input.")
    var newPassphraseStdin = false
    @Option(help: "Read the new passphrase from this file.")
    var newPassphraseFile: String?
    @Option(help: "Wrap the root key under this 32-byte key file (created if missing), replacing the current key file.")
    var newKeyFile: String?
    @Option(help: "Prove the current unlock with the threshold's shares, read from these files (comma-separated).")
    var shareFiles: String?
    @Option(help: "Split a new unseal key into this many shares (replaces a passphrase).")
    var shares: Int?
    @Option(help: "How many different admins' shares unseal (with --shares).")
    var threshold: Int?
    @Option(help: "Write the new shares to these files (comma-separated, created 0600) instead of printing them.")
    var newShareFiles: String?
    @OptionGroup var output: OutputOptions

    func validate() throws {
        if [keyFile != nil, passphrase.given, shareFiles != nil].filter({ $0 }).count > 1 {
            throw ValidationError("give one current unlock: the passphrase, --key-file or --share-files")
        }
        if (shares == nil) != (threshold == nil) { throw ValidationError("give --shares and --threshold together") }
        if shares != nil && (newPassphraseStdin || newPassphraseFile != nil) {
            throw ValidationError("a passphrase and shares exclude each other")
        }
        if let newShareFiles {
            guard let shares, newShareFiles.split(separator: ",").count == shares else {
                throw ValidationError("--new-share-files must name --shares files")
            }
        }
        if newPassphraseStdin && newPassphraseFile != nil {
            throw ValidationError("give at most one of --new-passphrase-stdin and --new-passphrase-file")
        }
        if newPassphraseStdin && passphrase.passphraseStdin {
            throw ValidationError("standard input can carry one passphrase: give the other with a file or at the prompt")
        }
    }

    func run() throws {
        let client = try connection.clientForSecrets()
        let key = try keyFile.map(KeyFileIO.read)
        let currentShares = try shareFiles.map { list in
            try list.split(separator: ",").map { String(decoding: Terminal.chompNewline(try Terminal.readFile(String($0), limit: 4096)), as: UTF8.self) }
        }
        let current = key == nil && currentShares == nil ? try passphrase.read(prompt: true, confirm: false, label: "Current vault passphrase: ") : nil
        let newFiles = newShareFiles.map { $0.split(separator: ",").map(String.init) } ?? []
        for file in newFiles where access(file, F_OK) == 0 {
            throw CLIError("\(file) exists", hint: "share files are created new", status: .usage)
        }
        let newGiven = newPassphraseStdin || newPassphraseFile != nil || newKeyFile != nil || shares != nil
        let newText = try PassphraseOptions.read(stdin: newPassphraseStdin, file: newPassphraseFile, prompt: !newGiven, confirm: true,
                                                 label: "New vault passphrase: ")
        var newKey: [UInt8]?
        var created = false
        if let newKeyFile {
            if access(newKeyFile, F_OK) == 0 {
                newKey = try KeyFileIO.read(newKeyFile)
            } else {
                newKey = try KeyFileIO.create(newKeyFile)
                created = true
            }
        }
        let answer: VaultRekeyResponse = try client.call(
            "POST", "/v1/vault/rekey",
            body: VaultRekeyRequest(passphrase: current, key: key.map(Base64.encode), newPassphrase: newText, newKey: newKey.map(Base64.encode),
                                    shares: currentShares, newShares: shares, newThreshold: threshold))
        for (file, share) in zip(newFiles, answer.shares ?? []) {
            try NewFile.write(Array((share + "\n").utf8)[...], to: file, lost: "the vault was rekeyed: rekey again to make new shares")
        }
        if output.json {
            var shown = answer
            if !newFiles.isEmpty { shown.shares = nil }
            return try Terminal.printJSON(shown)
        }
        if newFiles.isEmpty, let texts = answer.shares {
            Terminal.out("\(texts.count) new unseal shares follow, \(threshold ?? 0) of which unseal; give each to a different admin now (shown once):\n")
            for (index, share) in texts.enumerated() { Terminal.out("share \(index + 1): \(share)\n") }
        }
        Terminal.out("vault rekeyed: replaced the \(answer.replaced.joined(separator: " and ")); it now unseals with \(answer.unlocks.joined(separator: " or "))\n")
        if created, let newKeyFile { Terminal.out("wrote a new key file \(newKeyFile): keep it secret, it unseals this vault\n") }
    }
}

struct VaultBackup: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "backup",
        abstract: "Write a consistent online snapshot of the vault's store to FILE (admin).",
        discussion: """
            The daemon copies its database with SQLite's online backup API while it keeps
            serving; FILE (created new, mode 0600) holds only what the store holds: ciphertext,
            keyed hashes and metadata, never a secret value, passphrase or token. Prints the
            audit head it contains: after 'mlcredd --restore FILE' and an unseal, 'mlcred audit
            verify' passes and the record of that sequence number carries that mac (the restored
            daemon's own records follow it). Audited as vault.backup. Keep the passphrase or key
            file apart from the backup.

            Example: mlcred vault backup /var/backups/mlcred-$(date +%F).db
            """)

    @OptionGroup var connection: ConnectionOptions
    @Argument(help: "The file to write (must not exist).")
    var file: String
    @OptionGroup var output: OutputOptions

    struct Written: Encodable {
        let file: String
        let summary: VaultBackupSummary
        enum CodingKeys: String, CodingKey { case file, bytes, records, head }
        func encode(to encoder: Encoder) throws {
            var container = encoder.container(keyedBy: CodingKeys.self)
            try container.encode(file, forKey: .file)
            try container.encode(summary.bytes, forKey: .bytes)
            try container.encode(summary.records, forKey: .records)
            try container.encodeIfPresent(summary.head, forKey: .head)
        }
    }

    func run() throws {
        guard access(file, F_OK) != 0 else {
            throw CLIError("\(file) exists", hint: "choose a new file name: a backup never overwrites", status: .usage)
        }
        let answer = try connection.client().callRaw("POST", "/v1/vault/backup", body: Optional<String>.none)
        guard let newline = answer.firstIndex(of: 0x0A),
              let summary = try? APIJSON.decode(VaultBackupSummary.self, from: Array(answer[..<newline])),
              answer.count - newline - 1 == summary.bytes else {
            throw CLIError("the daemon's backup answer is malformed", hint: "check that the socket belongs to mlcredd of the same version")
        }
        try NewFile.write(answer[(newline + 1)...], to: file)
        if output.json { return try Terminal.printJSON(Written(file: file, summary: summary)) }
        let head = summary.head.map { "audit head seq \($0.seq) mac \($0.mac)" } ?? "no audit head yet"
        Terminal.out("wrote \(file): \(summary.bytes) bytes, \(Plural.count(Int(summary.records), "audit record")); \(head)\n")
    }
}

struct VaultRotate: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "rotate",
        abstract: "Make a new generation of the secret-encryption key; re-encrypt stored secrets in the background (admin).",
        discussion: """
            The new key (random, stored wrapped under a key derived from the root key) is used by
            every write at once; the daemon re-encrypts existing records in batches while it
            serves ('mlcred status' shows the records left, 'mlcred secret list' each record's
            key generation). Older generations stay available, so nothing stops opening
            meanwhile, across seals and restarts too. The audit chain and tokens are unaffected.
            Audited as vault.rotate (start and end of the re-encryption).
            """)

    @OptionGroup var connection: ConnectionOptions
    @OptionGroup var output: OutputOptions

    func run() throws {
        let answer: VaultRotateResponse = try connection.client().call("POST", "/v1/vault/rotate", body: Optional<String>.none)
        if output.json { return try Terminal.printJSON(answer) }
        Terminal.out("new key generation \(answer.generation); \(Plural.count(answer.pending, "stored record")) to re-encrypt in the background ('mlcred status' shows progress)\n")
    }
}

struct VaultSeal: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "seal", abstract: "Wipe the vault's keys from the daemon's memory (admin).")

    @OptionGroup var connection: ConnectionOptions
    @OptionGroup var output: OutputOptions

    func run() throws {
        let state: VaultStateResponse = try connection.client().call("POST", "/v1/vault/seal")
        if output.json { return try Terminal.printJSON(state) }
        Terminal.out("vault sealed\n")
    }
}
