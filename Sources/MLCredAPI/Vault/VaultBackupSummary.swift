/// The first line of a `POST /v1/vault/backup` answer; the snapshot's bytes follow it.
public struct VaultBackupSummary: Codable, Sendable, Equatable {
    /// The answer's content type: one JSON line, a newline, then the SQLite database file.
    public static let contentType = "application/vnd.mlcred.backup"

    /// Size of the snapshot in bytes.
    public var bytes: Int
    /// Audit records it holds.
    public var records: Int64
    /// Its last MAC'd audit record: `audit verify` prints the same head after a restore.
    public var head: AuditVerifyResponse.Head?

    public init(bytes: Int, records: Int64, head: AuditVerifyResponse.Head?) {
        self.bytes = bytes
        self.records = records
        self.head = head
    }
}
