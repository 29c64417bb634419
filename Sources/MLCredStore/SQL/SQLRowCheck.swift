/// An assertion that a row of `table` whose `column` is `key` matches `condition`, held
/// (`FOR SHARE` on PostgreSQL) until the transaction ends. It fails the transaction when no such
/// row exists: in an optimistic batch the batch then runs again, job by job, and the job reads
/// instead of asserting (`SQLSession.optimistic`). Checks of one kind in a batch merge into one
/// statement.
public struct SQLRowCheck: Sendable {
    let table: String
    let column: String
    /// SQL over the table's columns, the program's own text (no value of a request).
    let condition: String
    let key: String

    /// The one-key statement (`?`: the key): the row if it matches, held until COMMIT on
    /// PostgreSQL (`FOR SHARE`; SQLite's one writer is its own lock).
    func query(for dialect: SQLDialect) -> String {
        "SELECT 1 FROM \(table) WHERE \(column) = ? AND \(condition)" + (dialect == .postgres ? " FOR SHARE" : "")
    }

    /// The PostgreSQL statement for every key of the batch (`$1`: how many distinct keys, `$2`:
    /// them as an array): a division by zero unless each names a matching row. Rows are locked
    /// in key order, the order least likely to deadlock with another node locking several.
    var postgresQuery: String {
        "SELECT 1 / (COUNT(*) = $1)::int FROM (SELECT 1 FROM \(table) WHERE \(column) = ANY($2) AND \(condition) ORDER BY \(column) FOR SHARE) AS held"
    }

    /// What checks of a batch are merged under.
    var kind: String { "\(table).\(column) \(condition)" }

    /// Why a check failed: an error the optimistic writer answers by running the batch again.
    struct Failed: Error, CustomStringConvertible {
        let check: String
        var description: String { "no row matches \(check)" }
    }
}
