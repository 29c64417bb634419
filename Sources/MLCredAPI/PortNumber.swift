/// A TCP port as people write it: 1 to 65535 in plain decimal digits. Swift's `Int(_:)` also
/// takes a sign (`+5432`), which no URL grammar allows and no peer writes.
public enum PortNumber {
    public static func parse(_ text: some StringProtocol) -> Int? {
        guard (1...5).contains(text.utf8.count), text.utf8.allSatisfy({ (0x30...0x39).contains($0) }),
              let value = Int(text), (1...65535).contains(value) else { return nil }
        return value
    }
}
