import Dispatch

/// Keeps dispatch signal sources alive for the life of the process.
enum SignalSources {
    nonisolated(unsafe) static var retained: [DispatchSourceSignal] = []

    static func keep(_ sources: [DispatchSourceSignal]) { retained.append(contentsOf: sources) }
}
