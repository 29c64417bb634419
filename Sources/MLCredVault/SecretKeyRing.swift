import MLCredAPI
import MLCredCrypto
import Synchronization

/// The secret-encryption keys of every key generation, in guarded memory (`vault rotate`,
/// SPEC §13): generation 1 is derived from the root key; each later one is a random data key
/// stored wrapped under a root-derived wrapping key. New writes use the current (highest)
/// generation; a record is opened with the key of the generation it names.
final class SecretKeyRing: Sendable {
    private let keys: Mutex<[Int: SecureBytes]>

    init(first: SecureBytes) {
        keys = Mutex([1: first])
    }

    /// The current generation and its key.
    var current: (generation: Int, key: SecureBytes) {
        keys.withLock { keys in
            let generation = keys.keys.max() ?? 1
            // A ring always holds generation 1 (made in init).
            return (generation, keys[generation]!)
        }
    }

    func key(generation: Int) -> SecureBytes? {
        keys.withLock { $0[generation] }
    }

    func add(generation: Int, key: SecureBytes) {
        keys.withLock { $0[generation] = key }
    }

    /// Wipes and forgets the keys of generations below `generation` (generation 1, derived from
    /// the root key, is kept: it costs nothing and is derived again at the next unseal anyway).
    func retire(below generation: Int) {
        keys.withLock { keys in
            for (old, key) in keys where old >= 2 && old < generation {
                key.wipe()
                keys[old] = nil
            }
        }
    }

    func wipe() {
        keys.withLock { keys in for key in keys.values { key.wipe() } }
    }
}
