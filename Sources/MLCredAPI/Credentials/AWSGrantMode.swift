/// How a credentials request treats AWS grants.
public enum AWSGrantMode: String, Codable, Sendable, CaseIterable {
    /// Mint STS credentials now, like any other grant (`mlcred env`).
    case mint
    /// Mint nothing for AWS grants now; describe them instead, so the caller can write an AWS
    /// config whose `credential_process` fetches credentials when the SDK wants them (`mlcred run`).
    case `defer`
    /// Mint only the AWS grants (`mlcred credential-process` without `--grant`).
    case only
}
