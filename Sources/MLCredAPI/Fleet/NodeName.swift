/// A node's name (SPEC §12 `--node`, default the host name): the resource-name grammar, at most
/// 64 bytes. It is on every token, lease and audit record, in logs and in `fleet status`.
public enum NodeName {
    public static let maxLength = 64
    public static let requirement = "use 1-\(maxLength) letters, digits, '.', '_' or '-', not starting with '.' or '-'"

    public static func isValid(_ name: String) -> Bool {
        name.utf8.count <= maxLength && ResourceName.isValid(name)
    }
}
