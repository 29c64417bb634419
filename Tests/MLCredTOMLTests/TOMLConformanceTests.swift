import Foundation
import XCTest
@testable import MLCredTOML

/// The toml-test suite's TOML 1.0.0 documents (`toml-test/README.md`): every valid one parses to
/// the value its JSON names, every invalid one is refused with a line inside the document.
final class TOMLConformanceTests: XCTestCase {
    static let suite = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("toml-test")

    static func listed(_ kind: String) throws -> [String] {
        let list = try String(contentsOf: suite.appendingPathComponent("files-toml-1.0.0"), encoding: .utf8)
        return list.split(separator: "\n").map(String.init).filter { $0.hasPrefix(kind + "/") && $0.hasSuffix(".toml") }
    }

    /// The document as the policy loader hands it over: nil when it is not UTF-8 (refused there).
    static func document(_ path: String) throws -> String? {
        let data = try Data(contentsOf: suite.appendingPathComponent(path))
        return String(validating: data, as: UTF8.self)
    }

    func testEveryValidDocumentGivesItsExpectedValue() throws {
        let files = try Self.listed("valid")
        XCTAssertGreaterThan(files.count, 200)
        var failures: [String] = []
        for file in files {
            guard let text = try Self.document(file) else {
                failures.append("\(file): not UTF-8")
                continue
            }
            let expectedData = try Data(contentsOf: Self.suite.appendingPathComponent(String(file.dropLast(5)) + ".json"))
            let expected = try JSONSerialization.jsonObject(with: expectedData, options: [.fragmentsAllowed])
            do {
                let table = try TOML.parse(text)
                if let difference = Self.difference(.table(table), expected, at: "") {
                    failures.append("\(file): \(difference)")
                }
            } catch {
                failures.append("\(file): refused: \(error)")
            }
        }
        XCTAssertEqual(failures, [], "\(failures.count) of \(files.count) valid documents")
    }

    func testEveryInvalidDocumentIsRefusedWithALineInIt() throws {
        let files = try Self.listed("invalid")
        XCTAssertGreaterThan(files.count, 200)
        var accepted: [String] = []
        for file in files {
            guard let text = try Self.document(file) else { continue }
            do {
                _ = try TOML.parse(text)
                accepted.append(file)
            } catch {
                let lines = text.utf8.split(separator: UInt8(ascii: "\n"), omittingEmptySubsequences: false).count
                XCTAssert((1...max(lines, 1)).contains(error.line), "\(file): line \(error.line) of \(lines)")
                XCTAssertGreaterThanOrEqual(error.column, 1, file)
            }
        }
        XCTAssertEqual(accepted, [], "\(accepted.count) of \(files.count) invalid documents accepted")
    }

    /// Where `value` differs from toml-test's tagged JSON, or nil.
    static func difference(_ value: TOMLValue, _ expected: Any, at path: String) -> String? {
        switch value {
        case .table(let table):
            guard let object = expected as? [String: Any], object["type"] == nil || object["value"] == nil || object.count != 2 else {
                return "\(path): a table where \(expected) was expected"
            }
            if Set(table.keys) != Set(object.keys) { return "\(path): keys \(table.keys.sorted()) where \(object.keys.sorted()) were expected" }
            if table.keys.count != Set(table.keys).count { return "\(path): a key listed twice" }
            for key in table.keys {
                guard let child = table[key] else { return "\(path).\(key): listed but missing" }
                if let found = difference(child, object[key]!, at: path + "." + key) { return found }
            }
            return nil
        case .array(let elements):
            guard let array = expected as? [Any], array.count == elements.count else { return "\(path): \(elements.count) elements where \(expected) was expected" }
            for (index, element) in elements.enumerated() {
                if let found = difference(element, array[index], at: "\(path)[\(index)]") { return found }
            }
            return nil
        default:
            guard let tagged = expected as? [String: Any], let type = tagged["type"] as? String, let text = tagged["value"] as? String else {
                return "\(path): \(value) where \(expected) was expected"
            }
            let matches: Bool = switch value {
            case .string(let string): type == "string" && string == text
            case .integer(let integer): type == "integer" && Int64(text) == integer
            case .float(let float): type == "float" && Self.sameFloat(float, text)
            case .boolean(let flag): type == "bool" && String(flag) == text
            case .dateTime(let date): Self.dateType(date.kind) == type && Self.normalized(date.text) == Self.normalized(text)
            case .array, .table: false
            }
            return matches ? nil : "\(path): \(value) where \(type) \(text) was expected"
        }
    }

    static func sameFloat(_ value: Double, _ text: String) -> Bool {
        switch text {
        case "nan", "+nan", "-nan": value.isNaN
        case "inf", "+inf": value == .infinity
        case "-inf": value == -.infinity
        default: Double(text) == value
        }
    }

    static func dateType(_ kind: TOMLDateTime.Kind) -> String {
        switch kind {
        case .offsetDateTime: "datetime"
        case .localDateTime: "datetime-local"
        case .localDate: "date-local"
        case .localTime: "time-local"
        }
    }

    /// toml-test writes `T` and `Z`, and fractions of a second to the millisecond at least.
    static func normalized(_ text: String) -> String {
        let upper = text.uppercased().replacingOccurrences(of: " ", with: "T")
        guard let dot = upper.firstIndex(of: ".") else { return upper }
        let fraction = upper[upper.index(after: dot)...].prefix { $0.isNumber }
        let trimmed = fraction.reversed().drop { $0 == "0" }.reversed()
        return String(upper[..<dot]) + (trimmed.isEmpty ? "" : "." + String(trimmed)) + upper[upper.index(after: dot)...].dropFirst(fraction.count)
    }
}
