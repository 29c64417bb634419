/// A key as TOML compares keys: by its code points (its UTF-8 bytes), not by Swift's canonical
/// equivalence. `"\u{212A}"` (the Kelvin sign) and `K` are two keys, as are `é` and `e` + U+0301.
/// Hashing bytes is also linear whatever the text, where hashing a `String` normalizes it first.
struct TOMLKey: Hashable, Sendable {
    let utf8: [UInt8]

    init(_ text: String) {
        utf8 = Array(text.utf8)
    }
}
