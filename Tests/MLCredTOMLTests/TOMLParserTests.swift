import Foundation
import XCTest
@testable import MLCredTOML

/// What policies need of the parser beyond toml-test: lines for every key, errors at their
/// place, no crash or blow-up on hostile shapes.
final class TOMLParserTests: XCTestCase {
    func testKeysAndTablesKnowTheLineThatDefinedThem() throws {
        let table = try TOML.parse("""
            # a role
            name = "train"
            principals = [
              "uid:0",
            ]
            limits.cpu = 2

            [[grant]]
            secret = "a"
            [grant.claims]
            scope = "w"

            [[grant]]
            secret = "b"
            env = { A = "x" }
            """)
        XCTAssertEqual(table.line, 1)
        XCTAssertEqual(table.keys, ["name", "principals", "limits", "grant"])
        XCTAssertEqual(table.line(of: "name"), 2)
        XCTAssertEqual(table.line(of: "principals"), 3)
        XCTAssertEqual(table.line(of: "limits"), 6)
        XCTAssertEqual(table.line(of: "grant"), 8)
        XCTAssertNil(table.line(of: "missing"))
        let grants = try XCTUnwrap(table["grant"]?.array?.compactMap(\.table))
        XCTAssertEqual(grants.map(\.line), [8, 13])
        XCTAssertEqual(grants[0].line(of: "secret"), 9)
        XCTAssertEqual(grants[0].line(of: "claims"), 10)
        XCTAssertEqual(grants[0]["claims"]?.table?["scope"], .string("w"))
        XCTAssertEqual(grants[1].line(of: "env"), 15)
        XCTAssertEqual(grants[1]["env"]?.table?.line, 15)
        XCTAssertEqual(table["principals"]?.array, [.string("uid:0")])
        XCTAssertEqual(table["limits"]?.table?["cpu"]?.int, 2)
    }

    func testEveryValueType() throws {
        let table = try TOML.parse(#"""
            s = "tab\there \u00e9 \U0001F600"
            l = 'C:\path'
            m = """
            one \
              two"""
            ml = '''
            raw \n'''
            i = [9_223_372_036_854_775_807, -9223372036854775808, 0x7F, 0o17, 0b101, +0]
            f = [3.5, -1e-3, 6.02E+23, inf, -inf, nan]
            b = [true, false]
            d = [1979-05-27T07:32:00Z, 1979-05-27 07:32:00.5-07:00, 1979-05-27T07:32:00, 2024-02-29, 07:32:00.999]
            """#)
        XCTAssertEqual(table["s"]?.string, "tab\there é 😀")
        XCTAssertEqual(table["l"]?.string, #"C:\path"#)
        XCTAssertEqual(table["m"]?.string, "one two")
        XCTAssertEqual(table["ml"]?.string, #"raw \n"#)
        XCTAssertEqual(table["i"]?.array?.compactMap(\.int), [Int.max, Int.min, 127, 15, 5, 0])
        let floats = try XCTUnwrap(table["f"]?.array?.compactMap(\.double))
        XCTAssertEqual(Array(floats.prefix(5)), [3.5, -0.001, 6.02e23, .infinity, -.infinity])
        XCTAssertTrue(floats[5].isNaN)
        XCTAssertEqual(table["b"]?.array?.compactMap(\.bool), [true, false])
        XCTAssertEqual(table["d"]?.array?.map(\.typeName),
                       ["offset date-time", "offset date-time", "local date-time", "local date", "local time"])
        XCTAssertNil(table["i"]?.array?.first?.double, "an integer is not a float")
        XCTAssertNil(table["f"]?.array?.first?.int, "a float is not an integer")
    }

    func testErrorsSayWhatAndWhereInCharacters() {
        XCTAssertEqual(error("a = 1\nk = \"é\u{01}\""), TOMLSyntaxError(line: 2, column: 7,
            message: "control character U+0001 in a string: write it as an escape (\\uXXXX)"))
        XCTAssertEqual(error("a = 1\na = 2")?.message, "key 'a' is defined twice (first at line 1)")
        XCTAssertEqual(error("[t]\n[t]")?.message, "table [t] is defined twice (first at line 1)")
        XCTAssertEqual(error("a = 9223372036854775808")?.message, "'9223372036854775808' does not fit in a 64-bit integer")
        XCTAssertEqual(error("a = 07")?.message.hasPrefix("'07' is not a TOML number"), true)
        XCTAssertEqual(error("a = 2023-02-29")?.message, "'2023-02-29' is not a date: no such month or day")
        XCTAssertEqual(error("p = [\n\"x\",\n")?.line, 1, "an unclosed array is reported where it opens")
        XCTAssertEqual(error("a = { b = 1,\n c = 2 }")?.message, "an inline table must close on the line it opens ('}'); use a [table] for more")
        XCTAssertEqual(error("a = {b = 1,}")?.message, "an inline table takes no comma after its last entry")
        XCTAssertEqual(error("a.b = 1\n[a]")?.message, "table [a] is defined twice (first at line 1)")
        XCTAssertEqual(error("a = \"\\e\"")?.message.hasPrefix("unknown escape '\\e'"), true)
        XCTAssertEqual(error("a = \"\\uD800\"")?.message.hasPrefix("U+D800 is not a Unicode scalar value"), true)
        XCTAssertEqual(error("k = tru")?.line, 1)
    }

    /// Found in review: where a conflict is reported, and what the message says.
    func testConflictsAreReportedAtTheKeyOrHeaderThatConflicts() {
        XCTAssertEqual(error("a = 1\n\n  a = 2 # again"), TOMLSyntaxError(line: 3, column: 3, message: "key 'a' is defined twice (first at line 1)"))
        XCTAssertEqual(error("[a]\nx = 1\n[a]"), TOMLSyntaxError(line: 3, column: 1, message: "table [a] is defined twice (first at line 1)"))
        XCTAssertEqual(error("a = [\n1,\n]\na = 2")?.line, 4)
        XCTAssertEqual(error("[a.b.c]\n[a]\nb.d = 1\n[a.b]")?.message, "table [a.b] is defined twice (first at line 3)")
        XCTAssertEqual(error("a = {b = 1}\na.c = 2")?.message,
                       "'a' is an inline table (line 1), complete as written: nothing can be added to it")
        XCTAssertEqual(error("a = [1]\n[[a]]")?.message,
                       "'a' is an array written with '=' (line 1), complete as written: nothing can be added to it: [[a]] cannot add to it")
        XCTAssertEqual(error("x = null")?.message, "'null' is not a value: TOML has no null (leave the key out)")
        XCTAssertEqual(error("x = hello")?.message, "'hello' is not a value: a string needs quotes (\"hello\")")
        XCTAssertEqual(error("x = 10:00")?.message.hasPrefix("a time needs seconds in TOML 1.0.0"), true)
        XCTAssertEqual(error("x = 1e400")?.message, "'1e400' is beyond the largest 64-bit float (about 1.8e308)")
        XCTAssertEqual(error("x = \"a\rb\"")?.message, "a carriage return alone (U+000D) in a string: write it as \\r")
        XCTAssertEqual(error("x = \"abc\\\n\"")?.message, "a backslash at the end of a line joins lines only in a \"\"\" string")
        XCTAssertEqual(error("x = \"a\\\tb\"")?.message.hasPrefix("a backslash before U+0009 is no escape"), true)
    }

    /// Keys are code points: two spellings Swift calls equal are two keys (TOML: "Quoted keys
    /// follow the exact same rules as basic strings").
    func testKeysCompareByCodePointNotByCanonicalEquivalence() throws {
        let table = try TOML.parse("\"\u{212A}\" = 1\nK = 2\n\"\u{E9}\" = 3\n\"e\u{301}\" = 4\n")
        XCTAssertEqual(table.keys.count, 4)
        XCTAssertEqual(table["\u{212A}"]?.int, 1)
        XCTAssertEqual(table["K"]?.int, 2)
        XCTAssertEqual(table["\u{E9}"]?.int, 3)
        XCTAssertEqual(table["e\u{301}"]?.int, 4)
        XCTAssertEqual(table.line(of: "e\u{301}"), 4)
    }

    /// Threat: normalizing a long run of combining marks is quadratic in Swift (a 1 MiB key held
    /// the parser for minutes); more than 30 in a row (Unicode's stream-safe limit) is refused.
    func testLongRunsOfCombiningMarksAreRefused() throws {
        let marks = { (count: Int) in "e" + String(repeating: "\u{301}\u{316}", count: count / 2) }
        XCTAssertEqual(try TOML.parse("k = \"\(marks(30))\"")["k"]?.string, marks(30))
        let refusal = "more than 30 combining marks in a row in a string (Unicode's stream-safe limit)"
        XCTAssertEqual(error("k = \"\(marks(32))\"")?.message, refusal)
        XCTAssertEqual(error("\"\(marks(400_000))\" = 1")?.message, refusal)
        XCTAssertEqual(error("k = '''\n\(marks(400_000))'''")?.message, refusal)
    }

    /// Nesting is bounded (recursion stays shallow), and long flat shapes stay linear.
    func testHostileShapesAreErrorsOrParseWithoutBlowingUp() throws {
        let depth = "nested deeper than \(TOML.maximumDepth) levels"
        XCTAssertEqual(error("a = " + String(repeating: "[", count: 100_000))?.message, depth)
        XCTAssertEqual(error("a = " + String(repeating: "{b=", count: 100_000))?.message, depth)
        XCTAssertEqual(error("[" + Array(repeating: "a", count: 10_000).joined(separator: ".") + "]")?.message,
                       "a key of more than \(TOML.maximumDepth) parts")
        let deepest = String(repeating: "[", count: TOML.maximumDepth - 1) + String(repeating: "]", count: TOML.maximumDepth - 1)
        XCTAssertNotNil(try TOML.parse("a = " + deepest)["a"])
        // 100,000 elements of one array of tables: each appended in place, not by copying the array.
        let many = try TOML.parse(String(repeating: "[[a]]\nx = 1\n", count: 100_000))
        XCTAssertEqual(many["a"]?.array?.count, 100_000)
        let wide = try TOML.parse("a = [" + String(repeating: "1,", count: 200_000) + "]")
        XCTAssertEqual(wide["a"]?.array?.count, 200_000)
    }

    /// The seeds toml++ (the parser mlcred bundled before) aborted on are now plain errors.
    func testWhatAbortedTheOldParserIsAnError() throws {
        let corpus = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
            .appendingPathComponent("../../Fuzz/Corpus/policy").standardized
        let seeds = try FileManager.default.contentsOfDirectory(atPath: corpus.path).filter { $0.hasPrefix("toml-was-abort-") }
        XCTAssertEqual(seeds.count, 5)
        for seed in seeds {
            let data = try Data(contentsOf: corpus.appendingPathComponent(seed))
            let text = try XCTUnwrap(String(validating: data, as: UTF8.self), seed)
            XCTAssertNotNil(error(text), seed)
        }
        for text in ["[*", "a = [}", "nae=0[&0-a1-1i 5", "t=1979-05-27T:", "a=0000-06--e", "a=[0000-01-1i", "\u{FEFF}[."] {
            XCTAssertNotNil(error(text), text)
        }
    }

    private func error(_ text: String) -> TOMLSyntaxError? {
        do {
            _ = try TOML.parse(text)
            return nil
        } catch {
            return error
        }
    }
}
