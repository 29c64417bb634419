import ArgumentParser
import MLCredAPI
import MLCredClient

struct SecretCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "secret",
        abstract: "Store, generate, list and remove secrets (admin). No verb ever shows a stored value.",
        subcommands: [SecretPut.self, SecretGenerate.self, SecretList.self, SecretRemove.self, SecretRotate.self])
}

struct SecretPut: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "put",
        abstract: "Store a new version of a secret from a JSON object (stdin, or --from-file).",
        discussion: """
            Fields per type: aws: access_key_id, secret_access_key, [region],
            [endpoint_url]; postgres: host, port, dbname, user, password, [sslmode];
            static: any string fields. Values never come from argv, which other users can
            read.

            Examples:
              mlcred secret put warehouse --type postgres --from-file warehouse.json
              printf '%s' '{"token": "..."}' | mlcred secret put hf --type static
            """)

    @OptionGroup var connection: ConnectionOptions
    @Argument(help: "Secret name: letters, digits, '.', '_', '-'.")
    var name: String
    @Option(help: "static, aws or postgres.", completion: .list(["static", "aws", "postgres"]))
    var type: String
    @Flag(help: "Label the secret as reaching PHI: only phi roles may use it.")
    var phi = false
    @Option(help: "Read the JSON object from this file instead of standard input.")
    var fromFile: String?
    @Option(help: "Rotate it at its provider on this schedule, e.g. 30d (aws and postgres; see 'secret rotate').")
    var rotateEvery: String?
    @OptionGroup var output: OutputOptions

    func validate() throws {
        switch SecretType(rawValue: type) {
        case .static, .aws, .postgres: break
        case .jwtSigner: throw ValidationError("jwt-signer secrets are made inside the vault: mlcred secret generate NAME --type jwt-signer")
        case nil: throw ValidationError("--type must be static, aws or postgres")
        }
    }

    func run() throws {
        _ = try PathName.check(name, what: "secret name")
        let client = try connection.clientForSecrets()
        let raw: [UInt8]
        if let fromFile {
            raw = try Terminal.readFile(fromFile, limit: 60 * 1024)
        } else if Terminal.standardInputIsTerminal {
            Terminal.err("type or paste the secret as a JSON object (not shown); end with Ctrl-D\n")
            raw = try Terminal.readStandardInputHidden(limit: 60 * 1024)
        } else {
            raw = try Terminal.readStandardInput(limit: 60 * 1024)
        }
        let fields: [String: SecretFieldValue]
        do {
            fields = try APIJSON.decode([String: SecretFieldValue].self, from: raw)
        } catch {
            // The input is not quoted back: it is a secret.
            throw CLIError("the secret must be a JSON object whose values are strings"
                               + (SecretType(rawValue: type) == .postgres ? " (or a number for 'port')" : ""),
                           hint: Self.example(forType: type), status: .usage)
        }
        let meta: SecretMetadata = try client.call("PUT", "/v1/secrets/\(try PathName.check(name, what: "secret name"))",
                                                   body: SecretPutRequest(type: type, phi: phi ? true : nil, fields: fields, rotateEvery: rotateEvery))
        if output.json { return try Terminal.printJSON(meta) }
        Terminal.out("stored secret \(meta.name) version \(meta.version) (\(meta.type)\(meta.phi ? ", phi" : ""))\n")
    }

    /// What a secret of `type` looks like as JSON, for a hint (placeholders, never a real value).
    static func example(forType type: String) -> String {
        switch SecretType(rawValue: type) {
        case .static:
            "a static secret is any set of string fields, e.g. {\"token\": \"...\"}"
        case .aws:
            "e.g. {\"access_key_id\": \"AKIA...\", \"secret_access_key\": \"...\", \"region\": \"eu-west-1\"}"
        case .postgres:
            "e.g. {\"host\": \"db.example\", \"port\": 5432, \"dbname\": \"warehouse\", \"user\": \"mlcred_broker\", \"password\": \"...\"}"
        case .jwtSigner:
            "a jwt-signer secret is made inside the vault: 'mlcred secret generate NAME --type jwt-signer'"
        case nil:
            "--type is static, aws or postgres; 'mlcred secret put --help' shows each type's fields"
        }
    }
}

struct SecretGenerate: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "generate",
        abstract: "Create a secret inside the vault; for jwt-signer, an Ed25519 signing key.",
        discussion: "Example: mlcred secret generate tracking --type jwt-signer --issuer https://mlcred.example")

    @OptionGroup var connection: ConnectionOptions
    @Argument(help: "Secret name.")
    var name: String
    @Option(help: "jwt-signer.", completion: .list(["jwt-signer"]))
    var type: String
    @Option(help: "The `iss` claim of the JWTs it signs (default mlcred).")
    var issuer: String?
    @Flag(help: "Label the secret as reaching PHI.")
    var phi = false
    @OptionGroup var output: OutputOptions

    func run() throws {
        let meta: SecretMetadata = try connection.client().call(
            "POST", "/v1/secrets/\(try PathName.check(name, what: "secret name"))/generate", body: SecretGenerateRequest(type: type, issuer: issuer, phi: phi ? true : nil))
        if output.json { return try Terminal.printJSON(meta) }
        Terminal.out("generated secret \(meta.name) version \(meta.version) (\(meta.type)\(meta.phi ? ", phi" : ""))\n")
    }
}

struct SecretRotate: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "rotate",
        abstract: "Replace a secret's credential at its provider with one nobody has seen (admin).",
        discussion: """
            aws: a new access key for the same IAM user (IAM CreateAccessKey, through the
            secret's endpoint_url if it has one), stored as a new version, then the old key is
            deleted. postgres: the broker login's password is changed (ALTER ROLE) to a random
            40-character one, stored as a new version. If storing fails, the provider is put back
            as it was. Audited as secret.rotate. Live leases keep working (STS sessions do not
            depend on the key; PostgreSQL roles are revoked with the current password).
            """)

    @OptionGroup var connection: ConnectionOptions
    @Argument(help: "The secret.")
    var name: String
    @OptionGroup var output: OutputOptions

    func run() throws {
        let answer: SecretRotateResponse = try connection.client().call(
            "POST", "/v1/secrets/\(try PathName.check(name, what: "secret name"))/rotate", body: Optional<String>.none)
        if output.json { return try Terminal.printJSON(answer) }
        Terminal.out("rotated \(answer.name): version \(answer.version) holds the new credential; replaced \(answer.replaced)\(answer.oldRemoved ? " (removed at the provider)" : "")\n")
        if let note = answer.note { Terminal.err("mlcred: warning: \(note)\n") }
    }
}

struct SecretList: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "list",
        abstract: "List secrets: name, type, version, phi, times, key generation. Never values.",
        discussion: "Every record is test-decrypted; an altered one is reported by name and the command exits 1.")

    @OptionGroup var connection: ConnectionOptions
    @OptionGroup var output: OutputOptions

    func run() throws {
        let list: SecretListResponse = try connection.client().call("GET", "/v1/secrets")
        if output.json {
            try Terminal.printJSON(list)
        } else {
            let rows = list.secrets.map {
                [$0.name, $0.type, String($0.version), $0.phi ? "yes" : "no", $0.updatedAt, String($0.generation ?? 1), $0.error == nil ? "ok" : "CORRUPT"]
            }
            Terminal.out(Table.render(header: ["NAME", "TYPE", "VERSION", "PHI", "UPDATED", "KEY GEN", "INTEGRITY"], rows: rows))
        }
        let broken = list.secrets.compactMap(\.error)
        if let first = broken.first {
            throw CLIError(first + (broken.count > 1 ? " (and \(broken.count - 1) more)" : ""),
                           hint: "restore the state directory from a backup, or put the secret again")
        }
    }
}

struct SecretRemove: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "rm", abstract: "Destroy every stored version of a secret.",
        discussion: "--json prints {\"removed\": NAME}. Exit codes are the same as without --json.")

    @OptionGroup var connection: ConnectionOptions
    @Argument(help: "Secret name.")
    var name: String
    @Flag(help: "Remove it even if live leases need it to be revoked: their PostgreSQL roles stay in the database (no login after VALID UNTIL), their leases stay revoke_failed until a secret of this name is put back.")
    var force = false
    @OptionGroup var output: OutputOptions

    /// The daemon's answer to `DELETE /v1/secrets/NAME`.
    struct Removed: Codable {
        var removed: String
    }

    func run() throws {
        let path = "/v1/secrets/\(try PathName.check(name, what: "secret name"))" + (force ? "?force=true" : "")
        let answer: Removed = try connection.client().call("DELETE", path, body: Optional<String>.none)
        if output.json { return try Terminal.printJSON(answer) }
        Terminal.out("removed secret \(answer.removed)\n")
    }
}

/// Plain text tables.
enum Table {
    static func render(header: [String], rows: [[String]]) -> String {
        // Cells may hold what callers chose (role names, provider errors): shown, never obeyed.
        let rows = rows.map { $0.map(VisibleText.escaped) }
        var widths = header.map(\.count)
        for row in rows {
            for (index, cell) in row.enumerated() where index < widths.count { widths[index] = max(widths[index], cell.count) }
        }
        func line(_ cells: [String]) -> String {
            cells.enumerated().map { index, cell in
                index == cells.count - 1 ? cell : cell + String(repeating: " ", count: widths[index] - cell.count + 2)
            }.joined() + "\n"
        }
        return line(header) + rows.map(line).joined()
    }
}
