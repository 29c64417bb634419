import Glibc
import XCTest
@testable import MLCredDaemon

final class ProcessWatcherTests: XCTestCase {
    func testAWatcherSeesItsProcessExitEvenWhenKilled() throws {
        let pid = try spawn("/bin/sleep", "30")
        var reaped = false
        defer {
            if !reaped {
                kill(pid, SIGKILL)
                var status: Int32 = 0
                waitpid(pid, &status, 0)
            }
        }
        let start = try XCTUnwrap(PeerAttestation.startTime(pid: pid))
        let watcher = try XCTUnwrap(ProcessWatcher(pid: pid, startTime: start))
        XCTAssertFalse(watcher.hasExited)
        XCTAssertEqual(kill(pid, SIGKILL), 0)
        var status: Int32 = 0
        XCTAssertEqual(waitpid(pid, &status, 0), pid)
        reaped = true
        XCTAssertTrue(watcher.hasExited)
    }

    func testAProcessThatStartedAtAnotherTimeIsNotWatched() throws {
        let start = try XCTUnwrap(PeerAttestation.startTime(pid: getpid()))
        XCTAssertNotNil(ProcessWatcher(pid: getpid(), startTime: start))
        XCTAssertNil(ProcessWatcher(pid: getpid(), startTime: start + 1), "a reused pid must not pass for the bound process")
    }

    func testTheDescriptorIsClosedOnceOnStopAndNotAgainOnRelease() throws {
        let start = try XCTUnwrap(PeerAttestation.startTime(pid: getpid()))
        let before = openDescriptors()
        var watcher: ProcessWatcher? = try XCTUnwrap(ProcessWatcher(pid: getpid(), startTime: start))
        XCTAssertEqual(openDescriptors(), before + 1)
        watcher?.stop()
        XCTAssertEqual(openDescriptors(), before)
        XCTAssertEqual(watcher?.hasExited, true, "a stopped watcher vouches for nothing")
        // The freed number goes to the next descriptor opened: a second close would close this one.
        let sentinel = open("/dev/null", O_RDONLY | O_CLOEXEC)
        XCTAssertGreaterThanOrEqual(sentinel, 0)
        defer { close(sentinel) }
        watcher?.stop()
        watcher = nil
        XCTAssertNotEqual(fcntl(sentinel, F_GETFD), -1, "the watcher closed a descriptor it no longer owned")
    }

    func testReleasingAWatcherClosesItsDescriptor() throws {
        let start = try XCTUnwrap(PeerAttestation.startTime(pid: getpid()))
        let before = openDescriptors()
        var watcher: ProcessWatcher? = try XCTUnwrap(ProcessWatcher(pid: getpid(), startTime: start))
        XCTAssertEqual(openDescriptors(), before + 1)
        XCTAssertNotNil(watcher)
        watcher = nil
        XCTAssertEqual(openDescriptors(), before)
    }

    private func spawn(_ arguments: String...) throws -> pid_t {
        var pid: pid_t = 0
        let argv: [UnsafeMutablePointer<CChar>?] = arguments.map { strdup($0) } + [nil]
        defer { argv.forEach { free($0) } }
        let result = posix_spawn(&pid, arguments[0], nil, nil, argv, environ)
        guard result == 0 else { throw SpawnFailed(errno: result) }
        return pid
    }

    /// How many descriptors this process has open (the listing's own descriptor excluded).
    private func openDescriptors() -> Int {
        guard let directory = opendir("/proc/self/fd") else { return -1 }
        defer { closedir(directory) }
        var count = 0
        while let entry = readdir(directory) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
            if name != "." && name != ".." { count += 1 }
        }
        return count - 1
    }
}

private struct SpawnFailed: Error {
    let errno: Int32
}
