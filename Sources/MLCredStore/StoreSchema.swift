import Foundation
import GRDB

/// One schema change, the same on both engines (SPEC §12: same schema, same migrations).
/// Statements are written once in SQLite's words; `StoreSchema.postgres(_:)` translates the few
/// type names that differ. Where the engines cannot share a statement, a step names its engine.
struct Migration: Sendable {
    enum Step: Sendable {
        case both(String)
        case sqlite(String)
        case postgres(String)
    }

    let id: String
    let steps: [Step]

    /// The statements for `dialect`, in order.
    func statements(for dialect: SQLDialect) -> [String] {
        steps.compactMap { step in
            switch (step, dialect) {
            case (.both(let sql), .sqlite), (.sqlite(let sql), .sqlite): sql
            case (.both(let sql), .postgres): StoreSchema.postgres(sql)
            case (.postgres(let sql), .postgres): sql
            default: nil
            }
        }
    }
}

/// Schema history. A migration, once released, is never edited: add a new one.
enum StoreSchema {
    static let migrations: [Migration] = [
        Migration(id: "v1-vault-secrets-audit", steps: [
            // Non-secret vault settings and the wrapped root key(s).
            .both("""
                CREATE TABLE meta (
                    key TEXT PRIMARY KEY NOT NULL,
                    value TEXT NOT NULL
                ) STRICT
                """),
            // One row per secret version; `sealed` is nonce ‖ XChaCha20-Poly1305 ciphertext,
            // NULL once the secret was removed (the row stays so versions keep counting up).
            .both("""
                CREATE TABLE secrets (
                    name TEXT NOT NULL,
                    version INTEGER NOT NULL,
                    type TEXT NOT NULL,
                    phi INTEGER NOT NULL,
                    sealed BLOB,
                    created_at REAL NOT NULL,
                    removed_at REAL,
                    PRIMARY KEY (name, version)
                ) STRICT
                """),
            .both("""
                CREATE TABLE audit (
                    seq INTEGER PRIMARY KEY NOT NULL,
                    time TEXT NOT NULL,
                    principal TEXT NOT NULL,
                    action TEXT NOT NULL,
                    role TEXT,
                    grant_name TEXT,
                    result TEXT NOT NULL,
                    reason TEXT,
                    accessor TEXT,
                    prev TEXT,
                    mac TEXT
                ) STRICT
                """),
            .both("CREATE INDEX audit_time ON audit(time)"),
        ]),
        Migration(id: "v2-tokens-leases", steps: [
            // Tokens are stored only as a keyed BLAKE2b hash; the accessor names them safely.
            .both("""
                CREATE TABLE tokens (
                    accessor TEXT PRIMARY KEY NOT NULL,
                    token_hash TEXT NOT NULL UNIQUE,
                    role TEXT NOT NULL,
                    phi INTEGER NOT NULL,
                    uid INTEGER NOT NULL,
                    user TEXT,
                    pid INTEGER NOT NULL,
                    bound_start_time INTEGER,
                    issued_at REAL NOT NULL,
                    expires_at REAL NOT NULL,
                    max_expires_at REAL NOT NULL,
                    revoked_at REAL,
                    revoke_reason TEXT
                ) STRICT
                """),
            .both("CREATE INDEX tokens_live ON tokens(expires_at) WHERE revoked_at IS NULL"),
            .both("""
                CREATE TABLE leases (
                    id TEXT PRIMARY KEY NOT NULL,
                    accessor TEXT NOT NULL REFERENCES tokens(accessor),
                    role TEXT NOT NULL,
                    grant_name TEXT NOT NULL,
                    type TEXT NOT NULL,
                    secret TEXT NOT NULL,
                    provider_id TEXT NOT NULL,
                    created_at REAL NOT NULL,
                    expires_at REAL NOT NULL,
                    state TEXT NOT NULL,
                    last_error TEXT,
                    revoked_at REAL
                ) STRICT
                """),
            .both("CREATE INDEX leases_accessor ON leases(accessor)"),
            .both("CREATE INDEX leases_active ON leases(expires_at) WHERE state = 'active'"),
        ]),
        Migration(id: "v3-bound-token-index", steps: [
            // The sweeper asks for live process-bound tokens every second: keep that an index walk.
            .both("CREATE INDEX tokens_bound ON tokens(accessor) WHERE revoked_at IS NULL AND bound_start_time IS NOT NULL"),
        ]),
        Migration(id: "v4-lease-revocation", steps: [
            // Non-secret data a provider needs to revoke later (a grant's own revoke statements),
            // and the retry schedule of revocations that failed.
            .both("ALTER TABLE leases ADD COLUMN provider_state TEXT"),
            .both("ALTER TABLE leases ADD COLUMN attempts INTEGER NOT NULL DEFAULT 0"),
            .both("ALTER TABLE leases ADD COLUMN next_attempt_at REAL"),
            .both("CREATE INDEX leases_pending ON leases(next_attempt_at) WHERE state IN ('revoking', 'revoke_failed')"),
        ]),
        Migration(id: "v5-retention", steps: [
            // The retention purge finds what ended long ago without scanning live rows.
            .both("CREATE INDEX leases_ended ON leases(expires_at) WHERE state IN ('revoked', 'expired')"),
            .both("CREATE INDEX tokens_ended ON tokens(revoked_at) WHERE revoked_at IS NOT NULL"),
        ]),
        Migration(id: "v6-emergency", steps: [
            // Break-glass (SPEC §13): one row per emergency role asked for or open. A request
            // (first admin) becomes open when a second, different admin confirms it in time.
            .both("""
                CREATE TABLE emergencies (
                    role TEXT PRIMARY KEY NOT NULL,
                    first_uid INTEGER NOT NULL,
                    first_at REAL NOT NULL,
                    reason TEXT NOT NULL,
                    duration REAL NOT NULL,
                    second_uid INTEGER,
                    opened_at REAL,
                    until REAL
                ) STRICT
                """),
        ]),
        Migration(id: "v7-key-generations", steps: [
            // `vault rotate`: each ciphertext records the key generation it is under.
            .both("ALTER TABLE secrets ADD COLUMN generation INTEGER NOT NULL DEFAULT 1"),
        ]),
        Migration(id: "v8-rotate-every", steps: [
            // `rotate_every` (SPEC §13): the schedule, in seconds, on each version (kept across rotations).
            .both("ALTER TABLE secrets ADD COLUMN rotate_every INTEGER"),
        ]),
        Migration(id: "v9-fleet", steps: [
            // SPEC §12: every token, lease and audit record names its node; each node has its own
            // audit chain, keyed (node, seq); each node heartbeats its row in `nodes`.
            .both("ALTER TABLE tokens ADD COLUMN node TEXT NOT NULL DEFAULT ''"),
            .both("ALTER TABLE leases ADD COLUMN node TEXT NOT NULL DEFAULT ''"),
            .both("ALTER TABLE audit ADD COLUMN node TEXT NOT NULL DEFAULT ''"),
            .postgres("ALTER TABLE audit ADD PRIMARY KEY (node, seq)"),
            .sqlite("CREATE INDEX audit_node ON audit(node, seq)"),
            .both("CREATE INDEX leases_node ON leases(node, state)"),
            .both("CREATE INDEX tokens_node ON tokens(node) WHERE revoked_at IS NULL"),
            // `last_seen` is the store's clock (epoch seconds), never a node's.
            .both("""
                CREATE TABLE nodes (
                    name TEXT PRIMARY KEY NOT NULL,
                    last_seen REAL NOT NULL,
                    started_at REAL NOT NULL,
                    timeout REAL NOT NULL,
                    version TEXT NOT NULL,
                    environment TEXT NOT NULL,
                    phi INTEGER NOT NULL,
                    sealed INTEGER NOT NULL,
                    policy_digest TEXT NOT NULL,
                    tokens INTEGER NOT NULL,
                    leases INTEGER NOT NULL
                ) STRICT
                """),
        ]),
        Migration(id: "v10-tokens-per-uid", steps: [
            // A uid's live tokens on a node are counted at each issue (`--max-tokens-per-uid`):
            // the node index gains the uid instead of a B-tree more for every token's commit.
            .both("DROP INDEX tokens_node"),
            .both("CREATE INDEX tokens_node_uid ON tokens(node, uid) WHERE revoked_at IS NULL"),
        ]),
    ]

    /// The migrations for SQLite, under the identifiers GRDB recorded in existing databases.
    static var sqliteMigrator: DatabaseMigrator {
        var migrator = DatabaseMigrator()
        for migration in migrations {
            let statements = migration.statements(for: .sqlite)
            migrator.registerMigration(migration.id) { db in
                for sql in statements { try db.execute(sql: sql) }
            }
        }
        return migrator
    }

    /// A SQLite statement in PostgreSQL's words: its types (INTEGER is 64-bit there too, REAL a
    /// double, BLOB bytes), no STRICT (PostgreSQL is strict), and the reserved word `user` quoted.
    static func postgres(_ sql: String) -> String {
        var text = sql
        let replacements: [(String, String)] = [
            (") STRICT", ")"),
            ("seq INTEGER PRIMARY KEY NOT NULL", "seq BIGINT NOT NULL"),
            (" INTEGER", " BIGINT"),
            (" REAL", " DOUBLE PRECISION"),
            (" BLOB", " BYTEA"),
            (" user TEXT", " \"user\" TEXT"),
        ]
        for (from, to) in replacements { text = text.replacingOccurrences(of: from, with: to) }
        return text
    }
}
