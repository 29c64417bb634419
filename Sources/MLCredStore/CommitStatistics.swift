/// The store writer's counters since start, for `/v1/metrics` and `scripts/bench`.
public struct CommitStatistics: Sendable, Equatable {
    /// Transactions committed (group commits).
    public var transactions: Int
    /// Writes those transactions carried: writes / transactions is the mean group size, the
    /// figure that shows whether writers share fsyncs.
    public var writes: Int
    /// Seconds the writer thread spent on batches, from taking one to completing its writes.
    /// Near the wall time elapsed, the writer is the bottleneck.
    public var busySeconds: Double
    /// The part of `busySeconds` spent committing: from a batch's last statement to the
    /// engine's answer to COMMIT (SQLite: the WAL writes and the fsync; PostgreSQL: the round
    /// trip and the server's flush).
    public var commitSeconds: Double

    public init(transactions: Int = 0, writes: Int = 0, busySeconds: Double = 0, commitSeconds: Double = 0) {
        self.transactions = transactions
        self.writes = writes
        self.busySeconds = busySeconds
        self.commitSeconds = commitSeconds
    }
}
