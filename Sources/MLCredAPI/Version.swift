/// The product version reported by `status` and `--version`.
public let mlcredVersion = "0.1.0"
