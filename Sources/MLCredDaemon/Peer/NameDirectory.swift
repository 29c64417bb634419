import Glibc
import Synchronization

/// User and group names by id (NSS through libc), cached for `Limits.nameCacheSeconds`.
public final class NameDirectory: Sendable {
    private struct Entry {
        var name: String?
        var fetchedAt: Double
    }

    private let users = Mutex<[UInt32: Entry]>([:])
    private let groups = Mutex<[UInt32: Entry]>([:])

    public init() {}

    /// The user name of `uid`, if the system knows it.
    public func userName(uid: UInt32) -> String? {
        cached(users, id: uid) { uid in
            var entry = passwd()
            var result: UnsafeMutablePointer<passwd>?
            var buffer = [CChar](repeating: 0, count: 4096)
            guard getpwuid_r(uid, &entry, &buffer, buffer.count, &result) == 0, result != nil, let name = entry.pw_name else { return nil }
            return String(cString: name)
        }
    }

    /// The group name of `gid`, if the system knows it.
    public func groupName(gid: UInt32) -> String? {
        cached(groups, id: gid) { gid in
            var entry = group()
            var result: UnsafeMutablePointer<group>?
            var buffer = [CChar](repeating: 0, count: 16384)
            guard getgrgid_r(gid, &entry, &buffer, buffer.count, &result) == 0, result != nil, let name = entry.gr_name else { return nil }
            return String(cString: name)
        }
    }

    /// The gid of group `name`, uncached (looked up at start and on reload).
    public static func groupID(named name: String) -> UInt32? {
        var entry = group()
        var result: UnsafeMutablePointer<group>?
        var buffer = [CChar](repeating: 0, count: 16384)
        guard getgrnam_r(name, &entry, &buffer, buffer.count, &result) == 0, result != nil else { return nil }
        return entry.gr_gid
    }

    private func cached(_ box: borrowing Mutex<[UInt32: Entry]>, id: UInt32, lookup: (UInt32) -> String?) -> String? {
        let now = Double(time(nil))
        if let hit = box.withLock({ $0[id] }), now - hit.fetchedAt < Limits.nameCacheSeconds {
            return hit.name
        }
        let name = lookup(id)
        box.withLock { $0[id] = Entry(name: name, fetchedAt: now) }
        return name
    }
}
