import MLCredAPI

/// Names that travel in a URL path (secret names, accessors, lease ids): checked against
/// `ResourceName` before sending, so a `?`, `/` or space can never make a request act on
/// another name than the one typed.
enum PathName {
    /// `name`, if it is valid; else a usage error naming `what` it was meant to be.
    static func check(_ name: String, what: String) throws -> String {
        guard ResourceName.isValid(name) else {
            throw CLIError("invalid \(what) '\(name)': \(ResourceName.requirement)", status: .usage)
        }
        return name
    }
}
