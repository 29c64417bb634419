#if canImport(Glibc)
import Glibc
#endif

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

/// A fresh directory under /tmp named `prefix.XXXXXX`, removed with its contents when the
/// process exits normally (libFuzzer exits after -max_total_time; -fork=N starts a process per job).
public func temporaryDirectory(prefix: String) -> String {
    var template = Array("/tmp/\(prefix).XXXXXX".utf8CString)
    guard let made = mkdtemp(&template) else { fatalError("cannot make a directory in /tmp") }
    let path = String(cString: made)
    temporaryDirectories.append(path)
    if temporaryDirectories.count == 1 {
        atexit {
            for path in temporaryDirectories { removeTree(path) }
        }
    }
    return path
}

/// What `temporaryDirectory` made; read at exit only.
nonisolated(unsafe) var temporaryDirectories: [String] = []

/// Removes `path` and, if it is a directory (not a link to one), everything in it.
func removeTree(_ path: String) {
    var info = stat()
    guard lstat(path, &info) == 0 else { return }
    if info.st_mode & S_IFMT == S_IFDIR, let directory = opendir(path) {
        var names: [String] = []
        while let entry = readdir(directory) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
            if name != "." && name != ".." { names.append(name) }
        }
        closedir(directory)
        for name in names { removeTree(path + "/" + name) }
    }
    remove(path)
}
