/// Replaces every credential value in the job's output with `<mlcred:masked>`, also when a value
/// arrives split across writes, or between stdout and stderr: one masker reads both streams in
/// the order their bytes arrive (as a `2>&1` log interleaves them), and bytes that could be the
/// start of a value are held back until the value completes or is ruled out. Each byte leaves on
/// the stream it came from; a replaced value leaves on the stream where it began.
/// A guard against accidents in logs, not a boundary.
final class OutputMasker {
    static let replacement = Array("<mlcred:masked>".utf8)
    /// Values shorter than this are not masked: they would garble ordinary output.
    static let minimumLength = 6

    /// Output for one stream (the descriptor it goes to).
    struct Piece: Equatable {
        var target: Int32
        var bytes: [UInt8]
    }

    private var secrets: [[UInt8]] = []
    private var byFirstByte: [UInt8: [[UInt8]]] = [:]
    private var pending: [UInt8] = []
    /// The stream of each pending byte.
    private var pendingTargets: [Int32] = []

    init(values: [String]) {
        add(values)
    }

    /// Masks `values` from now on too (credentials fetched while the job runs).
    func add(_ values: [String]) {
        let fresh = values.filter { $0.utf8.count >= Self.minimumLength }.map { Array($0.utf8) }
        guard !fresh.isEmpty else { return }
        let unique = Set(secrets + fresh)
        secrets = unique.sorted { $0.count > $1.count }
        var index: [UInt8: [[UInt8]]] = [:]
        for secret in secrets { index[secret[0], default: []].append(secret) }
        byFirstByte = index
    }

    var isEmpty: Bool { secrets.isEmpty }

    /// Masked output for `chunk`, read from the stream going to `target`; may hold back a tail
    /// that could begin a value (from either stream).
    func process(_ chunk: [UInt8], from target: Int32) -> [Piece] {
        if secrets.isEmpty && pending.isEmpty { return chunk.isEmpty ? [] : [Piece(target: target, bytes: chunk)] }
        pending += chunk
        pendingTargets += repeatElement(target, count: chunk.count)
        var out: [Piece] = []
        var index = 0
        scan: while index < pending.count {
            if let candidates = byFirstByte[pending[index]] {
                let remaining = pending.count - index
                for secret in candidates {
                    if remaining >= secret.count {
                        if pending[index..<(index + secret.count)].elementsEqual(secret) {
                            Self.append(Self.replacement, to: pendingTargets[index], in: &out)
                            index += secret.count
                            continue scan
                        }
                    } else if secret.starts(with: pending[index...]) {
                        break scan  // could still become this value: hold from here
                    }
                }
            }
            Self.append(CollectionOfOne(pending[index]), to: pendingTargets[index], in: &out)
            index += 1
        }
        pending.removeFirst(index)
        pendingTargets.removeFirst(index)
        return out
    }

    /// One stream's masked output (a job with a single output stream, a pty).
    func process(_ chunk: [UInt8]) -> [UInt8] {
        process(chunk, from: 1).flatMap(\.bytes)
    }

    /// Whatever is held back, at the end of the output. A held tail that is the beginning of a
    /// value and at least `minimumLength` long is replaced, not let out: the end of a stream
    /// (a job killed mid-write) must not print most of a credential.
    func flush() -> [Piece] {
        defer {
            pending.removeAll()
            pendingTargets.removeAll()
        }
        guard let first = pendingTargets.first else { return [] }
        // Held bytes always start a possible value (that is why they are held); the longest
        // held prefix is what decides.
        if pending.count >= Self.minimumLength, secrets.contains(where: { $0.starts(with: pending) }) {
            return [Piece(target: first, bytes: Self.replacement)]
        }
        var out: [Piece] = []
        for (byte, target) in zip(pending, pendingTargets) { Self.append(CollectionOfOne(byte), to: target, in: &out) }
        return out
    }

    private static func append(_ bytes: some Collection<UInt8>, to target: Int32, in out: inout [Piece]) {
        if out.last?.target == target {
            out[out.count - 1].bytes += bytes
        } else {
            out.append(Piece(target: target, bytes: Array(bytes)))
        }
    }
}
