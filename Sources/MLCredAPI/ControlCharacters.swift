extension StringProtocol {
    /// Whether any C0 control character or DEL is in the text: names and labels a caller sends
    /// (an issuer, an emergency's reason, an explained user) refuse them, since they reach
    /// terminals, JWT claims and logs.
    public var containsControlCharacters: Bool {
        unicodeScalars.contains { $0.value < 0x20 || $0.value == 0x7F }
    }
}
