import Glibc

/// Wall-clock time as epoch seconds.
public enum WallClock {
    /// Now, in seconds since 1970 (UTC), with sub-second precision.
    public static func now() -> Double {
        var spec = timespec()
        clock_gettime(CLOCK_REALTIME, &spec)
        return Double(spec.tv_sec) + Double(spec.tv_nsec) / 1e9
    }
}
