/// A plain one-row INSERT into a table (no `ON CONFLICT`, no expression), which a batch may
/// merge with the other rows for the same table and columns: PostgresNIO sends one statement
/// per round trip, so an optimistic batch on PostgreSQL sends each table's rows as one
/// multi-row INSERT (`SQLSession.insert`).
public struct SQLInsert: Sendable {
    let table: String
    let columns: [String]
    /// The one-row statement, with `?` placeholders.
    let sql: String
    /// What rows of this insert are merged under: table and columns.
    let key: String
    /// Where the table sits under foreign keys: 0 for a table that references none, else one more
    /// than the tables it references. Merged rows go out by level (then in the order each kind
    /// first appeared), so a row never precedes the row it references in the same batch (a
    /// token issued with its credentials: its leases reference it).
    let level: Int

    init(_ table: String, _ columns: [String], level: Int = 0) {
        self.table = table
        self.columns = columns
        self.level = level
        let list = columns.joined(separator: ", ")
        sql = "INSERT INTO \(table)(\(list)) VALUES (\(Array(repeating: "?", count: columns.count).joined(separator: ", ")))"
        key = "\(table)(\(list))"
    }

    /// The PostgreSQL statement for `rows` rows: `$1 ... $n` numbered row by row.
    func postgres(rows: Int) -> String {
        var out = "INSERT INTO \(table)(\(columns.joined(separator: ", "))) VALUES "
        var number = 0
        for row in 0..<rows {
            out += row == 0 ? "(" : ", ("
            for column in 0..<columns.count {
                number += 1
                out += column == 0 ? "$\(number)" : ", $\(number)"
            }
            out += ")"
        }
        return out
    }
}
