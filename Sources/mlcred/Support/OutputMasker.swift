/// Replaces every credential value in a byte stream with `<mlcred:masked>`, also when a value
/// arrives split across writes: bytes that could be the start of a value are held back until
/// the value completes or is ruled out. A guard against accidents in logs, not a boundary.
final class OutputMasker {
    static let replacement = Array("<mlcred:masked>".utf8)
    /// Values shorter than this are not masked: they would garble ordinary output.
    static let minimumLength = 6

    private var secrets: [[UInt8]] = []
    private var byFirstByte: [UInt8: [[UInt8]]] = [:]
    private var pending: [UInt8] = []

    init(values: [String]) {
        add(values)
    }

    /// Masks `values` from now on too (credentials fetched while the job runs).
    func add(_ values: [String]) {
        let unique = Set(secrets + values.filter { $0.utf8.count >= Self.minimumLength }.map { Array($0.utf8) })
        secrets = unique.sorted { $0.count > $1.count }
        var index: [UInt8: [[UInt8]]] = [:]
        for secret in secrets { index[secret[0], default: []].append(secret) }
        byFirstByte = index
    }

    var isEmpty: Bool { secrets.isEmpty }

    /// Masked output for `chunk`; may hold back a tail that could begin a value.
    func process(_ chunk: [UInt8]) -> [UInt8] {
        if secrets.isEmpty { return chunk }
        pending += chunk
        var out: [UInt8] = []
        out.reserveCapacity(pending.count)
        var index = 0
        scan: while index < pending.count {
            if let candidates = byFirstByte[pending[index]] {
                let remaining = pending.count - index
                for secret in candidates {
                    if remaining >= secret.count {
                        if pending[index..<(index + secret.count)].elementsEqual(secret) {
                            out += Self.replacement
                            index += secret.count
                            continue scan
                        }
                    } else if secret.starts(with: pending[index...]) {
                        break scan  // could still become this value: hold from here
                    }
                }
            }
            out.append(pending[index])
            index += 1
        }
        pending.removeFirst(index)
        return out
    }

    /// Whatever is held back, at the end of the stream.
    func flush() -> [UInt8] {
        defer { pending.removeAll() }
        return pending
    }
}
