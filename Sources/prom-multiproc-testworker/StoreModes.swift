// Worker modes for the MmapStore tests (Tests/MmapStoreTests) and the slot benchmark.
//
// Thread code lives in functions here, never in main.swift top-level closures: those are
// inferred @MainActor and trap when run on another thread.
import Foundation
import MmapStore
import Synchronization
import SystemCalls

let storeModes: [String: WorkerMode] = [
    "hold": WorkerMode(usage: "hold DIR [ID|pid] [AMOUNT]", run: holdMode),
    "increment": WorkerMode(usage: "increment DIR THREADS N shared|separate|racy", run: incrementMode),
    "crash": WorkerMode(usage: "crash DIR ID|pid hot|append", run: crashMode),
    "grow": WorkerMode(usage: "grow DIR TARGET_BYTES", run: growMode),
    "fill-disk": WorkerMode(usage: "fill-disk DIR", run: fillDiskMode),
    "fork": WorkerMode(usage: "fork DIR", run: forkMode),
    "bench-slot": WorkerMode(usage: "bench-slot N [ROUNDS]", run: benchSlotMode),
    "mapping-sigbus": WorkerMode(usage: "mapping-sigbus DIR", run: mappingSigbusMode),
]

// MARK: helpers

/// Prints a line and flushes it at once, so a parent reading a pipe sees it before a kill.
func say(_ line: String) {
    print(line)
    fflush(nil)
}

func argument(_ a: [String], _ i: Int, _ usage: String) throws -> String {
    guard i < a.count else { throw UsageError(description: "missing argument \(i + 1): \(usage)") }
    return a[i]
}

func intArgument(_ a: [String], _ i: Int, _ usage: String) throws -> Int {
    guard let v = Int(try argument(a, i, usage)) else { throw UsageError(description: "not a number: \(a[i])") }
    return v
}

/// `pid` (or nothing) means the real process id; anything else is a fixed identifier.
func identity(_ a: [String], _ i: Int) -> ProcessIdentity {
    guard i < a.count, a[i] != "pid" else { return .processID }
    return .fixed(a[i])
}

func counterKey(_ family: String, _ labels: [Label] = [], help: String = "h") -> SeriesKey {
    SeriesKey(family: family, sample: family + "_total", labels: labels, help: help)
}

/// A start line for threads, so that they really run at the same time.
final class StartLine: Sendable {
    let waiting: Atomic<Int>
    init(_ count: Int) { waiting = Atomic(count) }
    func arriveAndWait() {
        waiting.subtract(1, ordering: .acquiringAndReleasing)
        while waiting.load(ordering: .acquiring) > 0 { sched_yield() }
    }
}

/// Runs `body(i)` for i in 0..<count, each on its own thread, and waits for all of them.
func runOnThreads(_ count: Int, _ body: @escaping @Sendable (Int) -> Void) {
    let group = DispatchGroup()
    for i in 0..<count {
        group.enter()
        let thread = Thread {
            body(i)
            group.leave()
        }
        thread.stackSize = 1 << 20
        thread.start()
    }
    group.wait()
}

func monotonicNanoseconds() -> UInt64 {
    var ts = timespec()
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return UInt64(ts.tv_sec) * 1_000_000_000 + UInt64(ts.tv_nsec)
}

// MARK: modes

/// Claims a counter file, adds AMOUNT to `held_total`, prints `ready <path>` and sleeps until
/// killed. For the liveness, claim and adoption tests.
@Sendable func holdMode(_ a: [String]) throws -> Int32 {
    let usage = "hold DIR [ID|pid] [AMOUNT]"
    let store = try ProcessStore(directory: try argument(a, 0, usage), identity: identity(a, 1))
    let held = try store.series(kind: .counter, key: counterKey("held"))
    held.add(a.count > 2 ? Double(a[2]) ?? 1 : 1)
    say("ready \(store.openPaths.joined(separator: " "))")
    while true { sleep(1000) }
}

/// THREADS threads each add 1 N times, to one series shared by the threads (`exact_total`) or to
/// one series per thread (`exact_total{thread="<pid>-<i>"}`). `racy` is the shared layout with
/// a non-atomic read-add-store instead of `add`, a negative control. Prints `done`.
@Sendable func incrementMode(_ a: [String]) throws -> Int32 {
    let usage = "increment DIR THREADS N shared|separate|racy"
    let store = try ProcessStore(directory: try argument(a, 0, usage))
    let threads = try intArgument(a, 1, usage)
    let n = try intArgument(a, 2, usage)
    let shared: Bool, racy: Bool
    switch try argument(a, 3, usage) {
    case "shared": shared = true; racy = false
    case "separate": shared = false; racy = false
    case "racy": shared = true; racy = true  // a negative control: loses updates
    default: throw UsageError(description: usage)
    }
    let pid = store.currentOwner
    var handles: [SeriesHandle] = []
    for t in 0..<threads {
        let labels = shared ? [] : [Label("thread", "\(pid)-\(t)")]
        handles.append(try store.series(kind: .counter, key: counterKey("exact", labels)))
    }
    let start = StartLine(threads)
    let frozen = handles
    runOnThreads(threads) { t in
        let h = frozen[t]
        start.arriveAndWait()
        if racy {
            for _ in 0..<n { h.set(h.value + 1) }
        } else {
            for _ in 0..<n { h.add(1) }
        }
    }
    say("done")
    return 0
}

/// Runs until killed, only ever increasing values. It bumps eight "hot" series (which continue
/// across restarts when the file is adopted) and appends new series of random sizes to a
/// counter file and a gauge file. Style `hot` appends up to 30 series per run (some large, so
/// an adopted file keeps growing across runs) and mostly increments; style `append` spends
/// its time appending, up to `crashAppendCap` series (through several doublings), with an
/// increment of an earlier series after each append. Prints `go` once its files are claimed.
@Sendable func crashMode(_ a: [String]) throws -> Int32 {
    let usage = "crash DIR ID|pid hot|append"
    let store = try ProcessStore(directory: try argument(a, 0, usage), identity: identity(a, 1))
    let appendStyle: Bool
    switch try argument(a, 2, usage) {
    case "hot": appendStyle = false
    case "append": appendStyle = true
    default: throw UsageError(description: usage)
    }
    var hot: [SeriesHandle] = []
    for i in 0..<8 {
        let kind: FileKind = i % 2 == 0 ? .counter : .gauge(.livesum)
        hot.append(try store.series(kind: kind, key: counterKey("hot", [Label("i", String(i))])))
    }
    say("go")
    var appended = 0
    var fresh: [SeriesHandle] = []
    func append(helpLength: Int) throws {
        let kind: FileKind = Bool.random() ? .counter : .gauge(.livesum)
        let key = counterKey("fresh", [Label("id", String(UInt64.random(in: 0...UInt64.max), radix: 36))],
                             help: String(repeating: "x", count: helpLength))
        let h = try store.series(kind: kind, key: key)
        h.add(1)
        fresh.append(h)
        appended += 1
    }
    while true {
        if appendStyle {
            if appended < crashAppendCap { try append(helpLength: Int.random(in: 0...800)) }
            fresh.randomElement()?.add(Double(Int.random(in: 1...3)))
            hot[appended % 8].add(1)
            continue
        }
        let r = Int.random(in: 0..<16)
        if r == 0 && appended < 30 && Int.random(in: 0..<64) == 0 {
            try append(helpLength: Int.random(in: 0..<8) == 0 ? Int.random(in: 0...8000) : Int.random(in: 0...100))
        } else if r < 4, let h = fresh.randomElement() {
            h.add(Double(Int.random(in: 1...3)))
        } else {
            hot[r % 8].add(1)
        }
    }
}

/// The most series one `crash append` run appends (split over its two files).
let crashAppendCap = 6000

/// Appends counter series of about 1 KiB each, pausing briefly now and then, until the counter
/// file's capacity reaches TARGET_BYTES; keeps adding to its first series. Prints
/// `path <path>` at the start and `keys <count> first <value>` at the end.
@Sendable func growMode(_ a: [String]) throws -> Int32 {
    let usage = "grow DIR TARGET_BYTES"
    let dir = try argument(a, 0, usage)
    let target = try intArgument(a, 1, usage)
    let file = try MetricFile.claim(directory: dir, kind: .counter, pid: String(getpid()))
    say("path \(file.path)")
    let first = try file.slot(for: counterKey("grow", [Label("i", "first")]).encoded())
    var keys = 1
    first.add(1)
    let help = String(repeating: "h", count: 900)
    while file.capacityBytes < target {
        _ = try file.slot(for: counterKey("grow", [Label("i", String(keys))], help: help).encoded())
        keys += 1
        first.add(1)
        if keys % 8 == 0 { usleep(1_000) }
    }
    say("keys \(keys) first \(first.value) capacity \(file.capacityBytes)")
    file.close()
    return 0
}

/// On a tiny file system: appends large series until growing the file fails with ENOSPC, then
/// shows the process survives: prints `enospc <error>`, adds to an existing series and prints
/// `survived <value>`. Exits 0 only if that all happened.
@Sendable func fillDiskMode(_ a: [String]) throws -> Int32 {
    let store = try ProcessStore(directory: try argument(a, 0, "fill-disk DIR"))
    let first = try store.series(kind: .counter, key: counterKey("disk", [Label("i", "first")]))
    first.add(1)
    let help = String(repeating: "d", count: 4000)
    for i in 0..<100_000 {
        do {
            let h = try store.series(kind: .counter, key: counterKey("disk", [Label("i", String(i))], help: help))
            h.add(1)
        } catch {
            guard error.errno == .noSpace else {
                say("unexpected \(error)")
                return 2
            }
            say("enospc \(error)")
            first.add(1)
            let again = try store.series(kind: .counter, key: counterKey("disk", [Label("i", "first")]))
            again.add(1)
            say("survived \(first.value)")
            return first.value == 3 ? 0 : 4
        }
    }
    say("never ran out of space")
    return 3
}

/// Creates series, forks, and in the child adds to one of them and creates a new one. The
/// parent checks that its files did not change while the child ran, then adds once more.
/// Prints `child <pid>` (from the child), then `parent <pid> child <pid> unchanged <bool>`.
@Sendable func forkMode(_ a: [String]) throws -> Int32 {
    let dir = try argument(a, 0, "fork DIR")
    let store = try ProcessStore(directory: dir)
    let x = try store.series(kind: .counter, key: counterKey("forked", [Label("k", "a")]))
    let y = try store.series(kind: .counter, key: counterKey("forked", [Label("k", "b")]))
    let g = try store.series(kind: .gauge(.livesum), key: SeriesKey(family: "fg", sample: "fg", labels: [], help: "g"))
    x.add(5)
    g.add(2)
    _ = y
    let parentPaths = store.openPaths
    let before = try parentPaths.map { try fileBytes($0) }
    fflush(nil)
    let child = fork()
    if child == 0 {
        x.add(1)
        let z = try? store.series(kind: .counter, key: counterKey("forked", [Label("k", "c")]))
        z?.add(7)
        say("child \(getpid()) files \(store.openPaths.joined(separator: " "))")
        _exit(z == nil ? 5 : 0)
    }
    guard child > 0 else { say("fork failed"); return 6 }
    var status: Int32 = 0
    while waitpid(child, &status, 0) < 0 && errno == EINTR {}
    let after = try parentPaths.map { try fileBytes($0) }
    x.add(10)
    let stillSame = store.openPaths == parentPaths
    say("parent \(getpid()) child \(child) unchanged \(before == after) samefiles \(stillSame) childstatus \(status)")
    return 0
}

func fileBytes(_ path: String) throws -> [UInt8] {
    var reader = MetricFileReader()
    let loaded = try reader.load(path: path)
    return Array(loaded.bytes)
}

/// Measures ValueSlot.add on one slot: from one thread, and from two threads at once.
/// Prints, per round, nanoseconds per update. Build with `-c release` for meaningful figures.
@Sendable func benchSlotMode(_ a: [String]) throws -> Int32 {
    let n = try intArgument(a, 0, "bench-slot N [ROUNDS]")
    let rounds = a.count > 1 ? Int(a[1]) ?? 5 : 5
    var template = Array("/tmp/pmp-bench-XXXXXX".utf8CString)
    guard template.withUnsafeMutableBufferPointer({ mkdtemp($0.baseAddress!) }) != nil else { return 2 }
    let dir = template.withUnsafeBufferPointer { String(cString: $0.baseAddress!) }
    defer { try? FileManager.default.removeItem(atPath: dir) }
    let store = try ProcessStore(directory: dir)
    let handle = try store.series(kind: .counter, key: counterKey("bench"))
    let slot = handle.slot
    var best1 = Double.infinity, best2 = Double.infinity, bestHandle = Double.infinity
    for round in 1...rounds {
        var t0 = monotonicNanoseconds()
        benchLoop(slot, n)
        let one = Double(monotonicNanoseconds() - t0) / Double(n)
        t0 = monotonicNanoseconds()
        benchHandleLoop(handle, n)
        let viaHandle = Double(monotonicNanoseconds() - t0) / Double(n)
        let start = StartLine(2)
        t0 = monotonicNanoseconds()
        runOnThreads(2) { _ in
            start.arriveAndWait()
            benchLoop(slot, n)
        }
        let two = Double(monotonicNanoseconds() - t0) / Double(2 * n)
        best1 = min(best1, one); best2 = min(best2, two); bestHandle = min(bestHandle, viaHandle)
        say(String(format: "round %d: 1 thread %.2f ns/update; SeriesHandle.add %.2f ns/update; 2 threads one slot %.2f ns/update (wall/total updates), %.2f ns per update per thread",
                   round, one, viaHandle, two, two * 2))
    }
    let expected = Double(rounds) * Double(4 * n) + 0
    say(String(format: "best: 1 thread %.2f ns; SeriesHandle.add %.2f ns; 2 threads %.2f ns wall (%.2f per thread); value %.0f expected %.0f",
               best1, bestHandle, best2, best2 * 2, slot.value, expected))
    return slot.value == expected ? 0 : 1
}

@inline(never) func benchLoop(_ slot: ValueSlot, _ n: Int) {
    for _ in 0..<n { slot.add(1) }
}

@inline(never) func benchHandleLoop(_ handle: SeriesHandle, _ n: Int) {
    for _ in 0..<n { handle.add(1) }
}

/// A file of 4 pages mapped by a `ReadMapping`, then truncated to one page: a guarded read of
/// the third page fails (prints `caught`); then the same page touched outside the guard must
/// still end the process with SIGBUS, as it would without the guard installed.
func mappingSigbusMode(_ a: [String]) throws -> Int32 {
    let path = try argument(a, 0, "mapping-sigbus DIR") + "/counter_sigbus.db"
    try Data(count: 4 * 4096).write(to: URL(fileURLWithPath: path))
    var reader = MetricFileReader()
    guard let identity = try reader.peek(path: path).identity,
          let mapping = ReadMapping(path: path, identity: identity, length: 4 * 4096) else {
        say("no mapping")
        return 2
    }
    guard truncate(path, 4096) == 0 else { return 2 }
    var value = 0.0, stamp = 0.0
    let read = [UInt32(2 * 4096)].withUnsafeBufferPointer { mapping.gather(offsets: $0, values: &value, stamps: &stamp) }
    say(read ? "read" : "caught")
    let fd = try Sys.open(path, [.readOnly])
    let raw = try Sys.mapShared(fd, length: 4 * 4096, writable: false, path: path)
    say("touching")
    let touched = raw.load(fromByteOffset: 2 * 4096, as: UInt64.self)
    say("survived \(touched)")
    return 0
}
