#if canImport(Glibc)
import Glibc
#endif

/// Whether the targets step around the crashes already found and reported, to keep fuzzing
/// what lies past them (`MLCRED_FUZZ_SKIP_KNOWN=1`, `scripts/fuzz --skip-known`): each target
/// says which it skips. Off by default, so a known crash fails the run until it is fixed.
public let skipsKnownCrashes: Bool = {
    guard let value = getenv("MLCRED_FUZZ_SKIP_KNOWN") else { return false }
    return String(cString: value) == "1"
}()

/// The fuzzer's bytes, read front to back as the small decisions a target needs (how many
/// values, which alphabet, where to cut). Reading past the end yields zeros, so every input,
/// however short, describes some case and the fuzzer's mutations stay meaningful.
public struct FuzzInput {
    public let bytes: [UInt8]
    public private(set) var position = 0

    public init(_ data: UnsafePointer<UInt8>?, _ size: Int) {
        bytes = data.map { Array(UnsafeBufferPointer(start: $0, count: size)) } ?? []
    }

    public init(bytes: [UInt8]) {
        self.bytes = bytes
    }

    public var isAtEnd: Bool { position >= bytes.count }

    /// The bytes not read yet.
    public var remaining: ArraySlice<UInt8> { bytes[min(position, bytes.count)...] }

    /// The next byte, or 0 past the end.
    public mutating func byte() -> UInt8 {
        guard position < bytes.count else { return 0 }
        defer { position += 1 }
        return bytes[position]
    }

    /// A number in `range`, from one byte.
    public mutating func number(in range: ClosedRange<Int>) -> Int {
        range.lowerBound + Int(byte()) % (range.upperBound - range.lowerBound + 1)
    }

    /// Up to `count` bytes (fewer at the end of the input).
    public mutating func take(_ count: Int) -> [UInt8] {
        let start = min(position, bytes.count)
        let end = min(start + max(0, count), bytes.count)
        position = end
        return Array(bytes[start..<end])
    }

    /// Everything not read yet.
    public mutating func rest() -> [UInt8] {
        take(bytes.count - position)
    }
}

/// Every place `needle` occurs in `haystack` (overlapping occurrences too).
public func occurrences(of needle: [UInt8], in haystack: [UInt8]) -> [Int] {
    guard !needle.isEmpty, haystack.count >= needle.count else { return [] }
    var found: [Int] = []
    let first = needle[0]
    for start in 0...(haystack.count - needle.count) where haystack[start] == first {
        if haystack[start..<(start + needle.count)].elementsEqual(needle) { found.append(start) }
    }
    return found
}

/// Stops the run with `message` on standard error: libFuzzer records the input as a crash.
public func propertyFailed(_ message: String) -> Never {
    fatalError("property violated: " + message)
}
