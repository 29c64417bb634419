import Synchronization

/// Caps connections in total and per uid (SPEC §9).
final class ConnectionLimiter: Sendable {
    private struct Counts {
        var total = 0
        var perUID: [UInt32: Int] = [:]
    }

    private let counts = Mutex(Counts())
    let maxTotal: Int
    let maxPerUID: Int

    init(maxTotal: Int, maxPerUID: Int) {
        self.maxTotal = maxTotal
        self.maxPerUID = maxPerUID
    }

    /// Takes a slot for `uid`; false if a cap is reached.
    func acquire(uid: UInt32) -> Bool {
        counts.withLock { counts in
            guard counts.total < maxTotal, counts.perUID[uid, default: 0] < maxPerUID else { return false }
            counts.total += 1
            counts.perUID[uid, default: 0] += 1
            return true
        }
    }

    /// Returns the slot of a closed connection.
    func release(uid: UInt32) {
        counts.withLock { counts in
            counts.total -= 1
            let left = counts.perUID[uid, default: 1] - 1
            counts.perUID[uid] = left > 0 ? left : nil
        }
    }

    /// Open connections now.
    var total: Int { counts.withLock { $0.total } }
}
