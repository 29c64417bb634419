/// Text from the daemon made safe to print on a terminal: what a caller chose (a role name in a
/// denial, a provider's error, a user name) is shown, never obeyed.
///
/// Threat: an unprivileged user sends a role name holding an escape sequence or a newline; it is
/// audited as sent, and an admin's `mlcred audit show` would print a forged record
/// ("allowed vault.unseal root(0)") or recolour, hide or rewrite lines. Control characters
/// (C0, DEL, C1) become `\xNN`; line and paragraph separators and the bidirectional controls
/// that reorder text ("Trojan Source") become `\u{NNNN}`; a backslash is doubled so the escapes
/// cannot be forged either.
enum VisibleText {
    static func escaped(_ text: String) -> String {
        guard text.unicodeScalars.contains(where: needsEscape) else { return text }
        var out = ""
        for scalar in text.unicodeScalars {
            if scalar == "\\" {
                out += "\\\\"
            } else if scalar.value < 0x20 || (0x7F...0x9F).contains(scalar.value) {
                let hex = String(scalar.value, radix: 16)
                out += "\\x" + (hex.count == 1 ? "0" + hex : hex)
            } else if needsEscape(scalar) {
                out += "\\u{" + String(scalar.value, radix: 16) + "}"
            } else {
                out.unicodeScalars.append(scalar)
            }
        }
        return out
    }

    private static func needsEscape(_ scalar: Unicode.Scalar) -> Bool {
        switch scalar.value {
        case 0..<0x20, 0x7F...0x9F, 0x5C: true
        case 0x2028, 0x2029: true  // line and paragraph separators
        case 0x200E, 0x200F, 0x202A...0x202E, 0x2066...0x2069, 0x061C: true  // bidirectional controls
        default: false
        }
    }
}
