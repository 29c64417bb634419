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
        return migrator
    }
}
