import CLinux
import Glibc
import Logging
import Synchronization

/// Gives memory back once the daemon goes idle (SPEC §11: resident memory under 20 MiB idle).
/// Most of an idle daemon's resident set is code it ran once, at start (the runtime's conformance
/// scans, migrations, the vault's key derivation): clean pages of its own executable. After
/// `idleSeconds` without an answered request, the heap's free pages are returned and the code
/// mappings dropped (`mlc_trim_idle_memory`); the pages stay in the page cache, and the code a
/// later request runs is mapped again from it (minor faults, no disk read). Once per idle period.
enum IdleTrim {
    static let idleSeconds = 5.0

    static func run(metrics: Metrics, logger: Logger) async {
        var lastCount = metrics.answered.load(ordering: .relaxed)
        var quietSince = ContinuousClock.now
        var trimmedAt: Int? = nil
        while !Task.isCancelled {
            try? await Task.sleep(for: .seconds(1))
            let count = metrics.answered.load(ordering: .relaxed)
            if count != lastCount {
                lastCount = count
                quietSince = .now
                continue
            }
            guard trimmedAt != count, ContinuousClock.now - quietSince >= .seconds(idleSeconds) else { continue }
            trimmedAt = count
            let dropped = mlc_trim_idle_memory()
            if dropped >= 0 {
                metrics.idleTrims.add(1, ordering: .relaxed)
                logger.debug("idle: memory trimmed", metadata: ["code_mappings_dropped_kib": "\(dropped / 1024)"])
            } else {
                logger.debug("idle: memory not trimmed", metadata: ["errno": "\(errno)"])
            }
        }
    }
}
