import GRDB

extension Store {
    /// Schema history. A migration, once released, is never edited: add a new one.
    static var migrator: DatabaseMigrator {
        var migrator = DatabaseMigrator()
        migrator.registerMigration("v1-vault-secrets-audit") { db in
            // Non-secret vault settings and the wrapped root key(s).
            try db.execute(sql: """
                CREATE TABLE meta (
                    key TEXT PRIMARY KEY NOT NULL,
                    value TEXT NOT NULL
                ) STRICT
                """)
            // One row per secret version; `sealed` is nonce ‖ XChaCha20-Poly1305 ciphertext,
            // NULL once the secret was removed (the row stays so versions keep counting up).
            try db.execute(sql: """
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
                """)
            try db.execute(sql: """
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
                """)
            try db.execute(sql: "CREATE INDEX audit_time ON audit(time)")
        }
        migrator.registerMigration("v2-tokens-leases") { db in
            // Tokens are stored only as a keyed BLAKE2b hash; the accessor names them safely.
            try db.execute(sql: """
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
                """)
            try db.execute(sql: "CREATE INDEX tokens_live ON tokens(expires_at) WHERE revoked_at IS NULL")
            try db.execute(sql: """
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
                """)
            try db.execute(sql: "CREATE INDEX leases_accessor ON leases(accessor)")
            try db.execute(sql: "CREATE INDEX leases_active ON leases(expires_at) WHERE state = 'active'")
        }
        migrator.registerMigration("v3-bound-token-index") { db in
            // The sweeper asks for live process-bound tokens every second: keep that an index walk.
            try db.execute(sql: "CREATE INDEX tokens_bound ON tokens(accessor) WHERE revoked_at IS NULL AND bound_start_time IS NOT NULL")
        }
        migrator.registerMigration("v4-lease-revocation") { db in
            // Non-secret data a provider needs to revoke later (a grant's own revoke statements),
            // and the retry schedule of revocations that failed.
            try db.execute(sql: "ALTER TABLE leases ADD COLUMN provider_state TEXT")
            try db.execute(sql: "ALTER TABLE leases ADD COLUMN attempts INTEGER NOT NULL DEFAULT 0")
            try db.execute(sql: "ALTER TABLE leases ADD COLUMN next_attempt_at REAL")
            try db.execute(sql: "CREATE INDEX leases_pending ON leases(next_attempt_at) WHERE state IN ('revoking', 'revoke_failed')")
        }
        migrator.registerMigration("v5-retention") { db in
            // The retention purge finds what ended long ago without scanning live rows.
            try db.execute(sql: "CREATE INDEX leases_ended ON leases(expires_at) WHERE state IN ('revoked', 'expired')")
            try db.execute(sql: "CREATE INDEX tokens_ended ON tokens(revoked_at) WHERE revoked_at IS NOT NULL")
        }
        migrator.registerMigration("v6-emergency") { db in
            // Break-glass (SPEC §13): one row per emergency role asked for or open. A request
            // (first admin) becomes open when a second, different admin confirms it in time.
            try db.execute(sql: """
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
                """)
        }
        migrator.registerMigration("v7-key-generations") { db in
            // `vault rotate`: each ciphertext records the key generation it is under.
            try db.execute(sql: "ALTER TABLE secrets ADD COLUMN generation INTEGER NOT NULL DEFAULT 1")
        }
        migrator.registerMigration("v8-rotate-every") { db in
            // `rotate_every` (SPEC §13): the schedule, in seconds, on each version (kept across rotations).
            try db.execute(sql: "ALTER TABLE secrets ADD COLUMN rotate_every INTEGER")
        }
        return migrator
    }
}
