/// Line numbers of keys in a TOML source. TOMLKit reports positions only for syntax errors,
/// so semantic errors find their line here: top-level keys, each `[[grant]]` header, and the
/// keys inside each grant.
struct SourceIndex {
    private(set) var topLevel: [String: Int] = [:]
    private(set) var grantHeaders: [Int] = []
    private(set) var grantKeys: [[String: Int]] = []

    init(source: String) {
        var section = Section.top
        var lineNumber = 0
        var inMultilineString = false
        for raw in source.split(omittingEmptySubsequences: false, whereSeparator: { $0 == "\n" || $0 == "\r\n" }) {  // "\r\n" is one Character
            lineNumber += 1
            let line = raw.trimmingLeadingWhitespace()
            let tripleQuotes = raw.components(of: "\"\"\"") + raw.components(of: "'''")
            if inMultilineString {
                if tripleQuotes % 2 == 1 { inMultilineString = false }
                continue
            }
            if tripleQuotes % 2 == 1 { inMultilineString = true }
            if line.hasPrefix("[[") {
                let name = line.dropFirst(2).prefix { $0 != "]" }.trimmingWhitespace()
                if name == "grant" {
                    grantHeaders.append(lineNumber)
                    grantKeys.append([:])
                    section = .grant(grantHeaders.count - 1)
                } else {
                    section = .other
                }
                continue
            }
            if line.hasPrefix("[") {
                let name = line.dropFirst().prefix { $0 != "]" }.trimmingWhitespace()
                if name.hasPrefix("grant."), case .grant = section {
                    // A sub-table of the current grant (e.g. [grant.claims]): keys stay with it.
                    if let index = grantHeaders.indices.last {
                        let key = String(name.dropFirst("grant.".count))
                        grantKeys[index][key] = grantKeys[index][key] ?? lineNumber
                        section = .grantSubtable(index)
                    }
                } else {
                    topLevel[name] = topLevel[name] ?? lineNumber
                    section = .other
                }
                continue
            }
            guard let key = Self.leadingKey(line) else { continue }
            switch section {
            case .top: topLevel[key] = topLevel[key] ?? lineNumber
            case .grant(let index): grantKeys[index][key] = grantKeys[index][key] ?? lineNumber
            case .grantSubtable, .other: break
            }
        }
    }

    private enum Section {
        case top
        case grant(Int)
        case grantSubtable(Int)
        case other
    }

    /// The bare or quoted key at the start of `key = value`, if the line is one.
    static func leadingKey(_ line: Substring) -> String? {
        var key = ""
        var rest = line[...]
        if rest.first == "\"" {
            rest = rest.dropFirst()
            key = String(rest.prefix { $0 != "\"" })
            rest = rest.dropFirst(key.count + 1)
        } else {
            key = String(rest.prefix { $0.isLetter || $0.isNumber || $0 == "_" || $0 == "-" || $0 == "." })
            rest = rest.dropFirst(key.count)
        }
        guard !key.isEmpty, rest.trimmingLeadingWhitespace().first == "=" else { return nil }
        return key.split(separator: ".").first.map(String.init)
    }

    func line(ofTopLevel key: String) -> Int { topLevel[key] ?? 1 }

    func line(ofGrant index: Int) -> Int { index < grantHeaders.count ? grantHeaders[index] : 1 }

    func line(ofGrant index: Int, key: String) -> Int {
        guard index < grantKeys.count else { return 1 }
        return grantKeys[index][key] ?? line(ofGrant: index)
    }
}

extension Substring {
    func trimmingLeadingWhitespace() -> Substring { drop { $0 == " " || $0 == "\t" } }

    func trimmingWhitespace() -> String {
        String(trimmingLeadingWhitespace().reversed().drop { $0 == " " || $0 == "\t" }.reversed())
    }

    func components(of needle: String) -> Int {
        var count = 0
        var rest = self
        while let range = rest.firstRange(of: needle) {
            count += 1
            rest = rest[range.upperBound...]
        }
        return count
    }
}
