import Dispatch
import Glibc
import Logging

/// Waits for SIGTERM or SIGINT; runs `onHangup` for each SIGHUP.
enum SignalWaiter {
    static func waitForTermination(logger: Logger, onHangup: @escaping @Sendable () -> Void) async {
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            let queue = DispatchQueue(label: "mlcred.signals")
            let once = OnceBox(continuation)
            var sources: [DispatchSourceSignal] = []
            for signalNumber in [SIGTERM, SIGINT] {
                signal(signalNumber, SIG_IGN)
                let source = DispatchSource.makeSignalSource(signal: signalNumber, queue: queue)
                source.setEventHandler { once.resume() }
                source.resume()
                sources.append(source)
            }
            signal(SIGHUP, SIG_IGN)
            let hangup = DispatchSource.makeSignalSource(signal: SIGHUP, queue: queue)
            hangup.setEventHandler {
                logger.notice("SIGHUP: reloading policies")
                onHangup()
            }
            hangup.resume()
            sources.append(hangup)
            SignalSources.keep(sources)
        }
    }
}
