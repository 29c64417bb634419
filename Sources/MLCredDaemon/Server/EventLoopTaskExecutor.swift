import NIOCore

/// Runs Swift tasks on one NIO event loop. A request handled under this executor preference
/// stays on its connection's event loop: the only thread boundaries it crosses are the hand-off
/// to the store's writer thread and the writer's completion coming back. Without it, every
/// request would hop to the cooperative pool and back again around each await.
///
/// Only for work that never blocks: point reads, hashing, signing, queuing a write, and awaiting
/// non-blocking network clients. Argon2id, process spawn, name-service look-ups and scans run
/// on the cooperative pool instead (see `Route.runsOnEventLoop`).
final class EventLoopTaskExecutor: TaskExecutor, @unchecked Sendable {
    let eventLoop: any EventLoop

    init(eventLoop: any EventLoop) {
        self.eventLoop = eventLoop
    }

    func enqueue(_ job: consuming ExecutorJob) {
        let job = UnownedJob(job)
        eventLoop.execute {
            job.runSynchronously(on: self.asUnownedTaskExecutor())
        }
    }
}
