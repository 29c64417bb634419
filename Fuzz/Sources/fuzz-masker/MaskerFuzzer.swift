import FuzzSupport

/// The masker of `mlcred run` (OutputMasker.swift, compiled into this target from
/// Sources/mlcred/Support). Property: **a complete value never leaves unmasked.** Every value of
/// at least `OutputMasker.minimumLength` bytes registered before a chunk is written must not
/// appear in what the masker emits from then on, however the stream is cut into writes, when
/// values share prefixes, overlap or contain one another, and at the end of the stream.
///
/// The input describes one job's output:
/// - an alphabet (two letters, four letters, printable ASCII, any byte: small alphabets make
///   shared prefixes and overlaps likely);
/// - 1-4 values, each 1-40 bytes long (shorter than the minimum too: those are not masked by
///   design and not checked), registered at the start or before a later write (`add`, as `run`
///   does for credentials the job fetches while it runs);
/// - the cut sizes of the writes;
/// - the stream, as operations: a whole value, a prefix of a value, or a literal byte.
///
/// An occurrence that overlaps a `<mlcred:masked>` marker in the output is not a leak: it is made
/// of the marker's own bytes (a value such as `asked>x` next to a masked one).
///
/// What `flush` emits at the end is checked too. (It used to emit a held-back tail raw, also when
/// it held a whole shorter value: issue 13 item 4, found here; the seed
/// Fuzz/Corpus/masker/known-leak-flush-held-tail keeps it fixed.)
let checksFlush = true

let alphabets: [[UInt8]] = [
    Array("ab".utf8),
    Array("abcd".utf8),
    (0x21...0x7E).map { UInt8($0) },
]

struct Value {
    var bytes: [UInt8]
    /// The write before which it is registered (0: from the start).
    var addedBefore: Int
}

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzMasker(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    var input = FuzzInput(data, size)
    let alphabetChoice = input.number(in: 0...3)
    func map(_ byte: UInt8) -> UInt8 {
        alphabetChoice < alphabets.count ? alphabets[alphabetChoice][Int(byte) % alphabets[alphabetChoice].count] : byte
    }

    var values: [Value] = []
    for _ in 0..<input.number(in: 1...4) {
        let length = input.number(in: 1...40)
        let when = input.byte()
        let raw = input.take(length).map(map)
        // What `run` registers are Strings; invalid UTF-8 reaches the masker repaired.
        let text = String(decoding: raw, as: UTF8.self)
        values.append(Value(bytes: Array(text.utf8), addedBefore: when % 4 == 0 ? Int(when / 4) : 0))
    }
    var cuts: [Int] = []
    for _ in 0..<input.number(in: 1...8) { cuts.append(input.number(in: 1...64)) }

    var stream: [UInt8] = []
    while !input.isAtEnd {
        let operation = input.byte()
        switch operation {
        case 0..<64:
            stream += values[Int(operation) % values.count].bytes
        case 64..<112:
            let value = values[Int(operation) % values.count].bytes
            stream += value.prefix(input.number(in: 0...40) % (value.count + 1))
        case 112..<128:
            stream.append(input.byte())  // a raw byte, whatever the alphabet
        default:
            stream.append(map(operation))
        }
    }

    var chunks: [[UInt8]] = []
    var start = 0
    while start < stream.count {
        let end = min(stream.count, start + cuts[chunks.count % cuts.count])
        chunks.append(Array(stream[start..<end]))
        start = end
    }
    for index in values.indices where values[index].addedBefore > 0 {
        values[index].addedBefore = chunks.isEmpty ? 0 : values[index].addedBefore % chunks.count
    }

    // As JobRunner drives it: made with the values known at the start, `add` for later ones,
    // `process` per read, `flush` at the end of the stream.
    let masker = OutputMasker(values: values.filter { $0.addedBefore == 0 }.map { String(decoding: $0.bytes, as: UTF8.self) })
    var emitted: [[UInt8]] = []  // emitted[i]: the answer to chunk i; the last element: flush
    for (index, chunk) in chunks.enumerated() {
        let late = values.filter { $0.addedBefore == index && index > 0 }
        if !late.isEmpty { masker.add(late.map { String(decoding: $0.bytes, as: UTF8.self) }) }
        emitted.append(masker.process(chunk))
    }
    emitted.append(checksFlush ? masker.flush().flatMap(\.bytes) : [])

    for value in values where value.bytes.count >= OutputMasker.minimumLength {
        // What left the masker after the value was registered.
        let output = Array(emitted[value.addedBefore...].joined())
        let markers = occurrences(of: OutputMasker.replacement, in: output)
        for position in occurrences(of: value.bytes, in: output) {
            let end = position + value.bytes.count
            let insideMarker = markers.contains { $0 < end && position < $0 + OutputMasker.replacement.count }
            if !insideMarker {
                propertyFailed("""
                    value \(describe(value.bytes)) (registered before write \(value.addedBefore)) left unmasked at byte \(position) \
                    of the output \(describe(output)); writes: \(chunks.map(describe)); values: \(values.map { describe($0.bytes) })
                    """)
            }
        }
    }
    return 0
}

/// Bytes as a quoted string with escapes, for the crash report.
func describe(_ bytes: [UInt8]) -> String {
    var text = "\""
    for byte in bytes {
        switch byte {
        case 0x20...0x7E where byte != 0x22 && byte != 0x5C: text.unicodeScalars.append(Unicode.Scalar(byte))
        default: text += "\\x" + String(byte, radix: 16).leftPadded(to: 2)
        }
    }
    return text + "\""
}

extension String {
    func leftPadded(to width: Int) -> String {
        String(repeating: "0", count: max(0, width - count)) + self
    }
}
