// A fixed set of threads that run request handlers off the event loop, first come first
// served. Dedicated threads rather than Dispatch's shared pool: a handler that blocks on file
// I/O for a long merge cannot be starved by, or starve, other work in the process.
import SystemCalls
import Dispatch
import Synchronization

final class HTTPHandlerPool: Sendable {
    private struct State {
        var queue: [@Sendable () -> Void] = []
        var head = 0
        var stopped = false
    }

    private let state = Locked(State())
    private let ready = DispatchSemaphore(value: 0)
    private let threadCount: Int

    /// Starts `threads` worker threads (at least one).
    init(threads: Int) throws(SystemError) {
        threadCount = max(1, threads)
        for i in 0..<threadCount {
            try Sys.startThread(name: "pmp-http-handler-\(i)") { [self] in work() }
        }
    }

    /// Queues `job`; it runs when a thread is free, unless the pool stops first.
    func submit(_ job: @escaping @Sendable () -> Void) {
        let accepted = state.withLock { s -> Bool in
            if s.stopped { return false }
            s.queue.append(job)
            return true
        }
        if accepted { ready.signal() }
    }

    /// Lets running jobs finish, drops queued ones, and ends the threads.
    func stop() {
        state.withLock { s in
            s.stopped = true
            s.queue = []
            s.head = 0
        }
        for _ in 0..<threadCount { ready.signal() }
    }

    private func work() {
        while true {
            ready.wait()
            let job = state.withLock { s -> (@Sendable () -> Void)? in
                if s.stopped || s.head >= s.queue.count { return nil }
                let job = s.queue[s.head]
                s.head += 1
                if s.head == s.queue.count {
                    s.queue.removeAll(keepingCapacity: true)
                    s.head = 0
                }
                return job
            }
            guard let job else {
                if state.withLock({ $0.stopped }) { return }
                continue
            }
            job()
        }
    }
}
