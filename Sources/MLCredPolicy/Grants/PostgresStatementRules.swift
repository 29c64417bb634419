/// What a postgres-role grant's `create` and `revoke` statements may contain. Checked when
/// policies load, and again by the provider before it runs them.
public enum PostgresStatementRules {
    /// First words that would end, split or re-identify the broker's one transaction
    /// (a COMMIT half-way would leave a role behind when a later statement fails; SET ROLE
    /// would run the rest as someone else).
    static let refusedFirstWords: Set<String> = [
        "begin", "commit", "rollback", "end", "abort", "savepoint", "release", "start", "prepare",
        "set", "reset", "discard",
    ]

    /// Placeholders of create statements.
    public static let createPlaceholders = ["name", "password", "expiration"]
    /// Placeholders of revoke statements.
    public static let revokePlaceholders = ["name"]

    /// The problem with `statement`, or nil. `placeholders` are those it may use.
    public static func problem(in statement: String, placeholders: [String]) -> String? {
        if let word = firstWord(statement), refusedFirstWords.contains(word) {
            return "statements may not control the transaction or the session ('\(word.uppercased())'): the broker runs them in one transaction of its own"
        }
        let scalars = Array(statement.unicodeScalars)
        // Lexes quotes as PostgreSQL does ('' and "" inside a quoted text are the quote itself):
        // a placeholder inside quotes must be all of the quoted text.
        var quote: Unicode.Scalar?
        var index = 0
        while index < scalars.count {
            let scalar = scalars[index]
            if scalar == "{" && index + 1 < scalars.count && scalars[index + 1] == "{",
               let close = (index + 2..<max(index + 2, scalars.count - 1)).first(where: { scalars[$0] == "}" && scalars[$0 + 1] == "}" }) {
                let word = String(String.UnicodeScalarView(scalars[(index + 2)..<close]))
                guard placeholders.contains(word) else {
                    return "unknown placeholder {{\(word)}} (here: \(placeholders.map { "{{\($0)}}" }.joined(separator: ", ")))"
                }
                if let quote {
                    let after: Unicode.Scalar? = close + 2 < scalars.count ? scalars[close + 2] : nil
                    guard index > 0, scalars[index - 1] == quote, after == quote else {
                        return "placeholder {{\(word)}} must be quoted whole: \"{{\(word)}}\" or '{{\(word)}}', nothing else inside the quotes"
                    }
                    if quote == "\"" && word != "name" {
                        return "{{\(word)}} may not be an identifier (\"{{\(word)}}\"): write '{{\(word)}}'"
                    }
                }
                index = close + 2
                continue
            }
            if let open = quote {
                if scalar == open {
                    if index + 1 < scalars.count && scalars[index + 1] == open { index += 2; continue }  // doubled: the quote itself
                    quote = nil
                }
            } else if scalar == "'" || scalar == "\"" {
                quote = scalar
            }
            index += 1
        }
        return nil
    }

    /// Whether `statement` makes the lease's role: `CREATE ROLE` or `CREATE USER` naming `{{name}}`.
    public static func createsRole(_ statement: String) -> Bool {
        let words = normalized(statement).split(separator: " ")
        return words.count >= 3 && words[0] == "create" && (words[1] == "role" || words[1] == "user")
            && words[2].contains("{{name}}")
    }

    /// Whether `statement` gives a role the lease's expiry: `VALID UNTIL '{{expiration}}'`.
    public static func setsExpiry(_ statement: String) -> Bool {
        let text = normalized(statement)
        return text.contains("valid until '{{expiration}}'") || text.contains("valid until {{expiration}}")
    }

    /// Lower-cased, comments dropped, blanks folded to one space.
    static func normalized(_ statement: String) -> String {
        var rest = Substring(statement)
        var out = ""
        while !rest.isEmpty {
            if rest.hasPrefix("--") {
                rest = rest.drop { $0 != "\n" }
            } else if rest.hasPrefix("/*") {
                rest = rest.firstRange(of: "*/").map { rest[$0.upperBound...] } ?? ""
                out.append(" ")
            } else {
                out.append(rest.removeFirst())
            }
        }
        return out.lowercased().split(whereSeparator: \.isWhitespace).joined(separator: " ")
    }

    /// The statement's first keyword, lower-cased, after blanks and comments.
    static func firstWord(_ statement: String) -> String? {
        let word = normalized(statement).drop { $0 == " " || $0 == "(" }.prefix { $0.isLetter }
        return word.isEmpty ? nil : String(word)
    }
}
