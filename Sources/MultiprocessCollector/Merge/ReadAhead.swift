import Dispatch
import MmapStore
import SystemCalls

// The merge on several threads: the merge itself on one, reading ahead on the others.
//
// What a merge decides (which key a new entry is, a family's type, help text and mode, every
// sum in file order) depends on the files before, so it happens on the merging thread, file
// by file in name order, exactly as a merge on one thread does it: the output is the same
// bytes whatever the number of threads.
//
// What can move to other threads is reading the files the catalog already knows (a serving
// collector's scrapes after its first): gathering the values of a file it keeps mapped, or
// reading a file whose every entry is the one it read before, checked by key length as the
// merging thread checks it. Each read-ahead thread takes the next such file no thread has
// taken, reads its values into a slot of its own and hands them over; the merging thread adds
// them as if it had read them itself (`MergeEngine.add(path:skipDeadOwners:reader:ready:)`).
// A file that differs in any way (replaced, grown, damaged, truncated under its mapping) is
// handed over as nothing, and the merging thread reads it itself and reports what it finds,
// as a merge on one thread would.
//
// Only the merging thread reads files the catalog does not know: it must check and decode
// their keys in order anyway, and handing their bytes to it from another core costs about
// what reading them does (tried: a fresh collect took longer). It reads a known file ahead
// too while the file it needs next is still being read, and threads read at most `slots`
// files ahead of the merge, so memory stays bounded (a slot holds a file's values: 16 bytes
// per entry).

/// The values and timestamps of every entry of a file the catalog knows, read by a read-ahead
/// thread into its slot.
struct ReadValues {
    enum Source {
        /// Gathered through the file's kept mapping: the thread checked it is the file mapped,
        /// used exactly as far as when it was read last.
        case mapping
        /// Read from the file `identity`, used as far as `used`, whose every entry is one of
        /// the catalog's ``KnownFile`` with its key length (trusted, as `MergeEngine.check`
        /// trusts it), and nothing follows them; with a new mapping of it, where the thread
        /// made one.
        case file(identity: FileIdentity, used: Int, mapping: ReadMapping?)
    }
    let source: Source
    let count: Int
    let values: UnsafePointer<Double>
    let stamps: UnsafePointer<Double>
}

/// Where one read-ahead thread reads a file for the merging thread.
///
/// `@unchecked Sendable`, without run-time exclusivity checks: one thread at a time uses it,
/// handed over under ``ReadAhead``'s lock (the reading thread until it marks the file ready,
/// then the merging thread until it marks the file merged).
private final class ReadAheadSlot: @unchecked Sendable {
    @exclusivity(unchecked) var reader = MetricFileReader()
    @exclusivity(unchecked) var scratch = EntryScratch(capacity: 0)
    @exclusivity(unchecked) var ready: ReadValues?

    /// Reads the values of the file at `path` if the catalog knows it (`known`) and it still
    /// holds the same entries: through its mapping when it is the file mapped, used as far;
    /// else from the file; nil where anything differs or goes wrong.
    func prepare(path: String, known: KnownFile?, skipDeadOwners: Bool) {
        ready = nil
        guard let known, known.entries.keys.count > 0 else { return }
        // A live-mode gauge file may belong to a dead process the merge leaves out: not worth
        // reading before the merging thread has looked.
        if skipDeadOwners, let name = MetricFileName(parsing: MetricFileName.baseName(of: path)), case .gauge(let mode) = name.kind,
           mode.isLive { return }
        let n = known.entries.keys.count
        if n > scratch.capacity { scratch.grow(to: n, keeping: 0) }
        let (values, stamps) = (scratch.values, scratch.stamps)
        if let mapping = known.mapping {
            guard case let (identity, used)? = try? reader.peek(path: path) else { return }
            if identity == known.identity, used == known.used, used <= mapping.length {
                // Truncated under the mapping: the merging thread finds that out again and
                // drops the mapping.
                if known.entries.valueOffsets.withUnsafeBufferPointer({ mapping.gather(offsets: $0, values: values, stamps: stamps) }) {
                    ready = ReadValues(source: .mapping, count: n, values: values, stamps: stamps)
                }
                return
            }
        }
        var identity: FileIdentity?
        var used = 0
        var trusted = 0
        var read = 0
        let complete = try? known.entries.lengths.withUnsafeBufferPointer { lengths throws(MetricFileError) in
            try reader.streamEntries(path: path, opened: { opened, usedNow in
                identity = opened
                used = usedNow
                trusted = known.trustedEntries(opened: opened, used: usedNow)
            }) { (bytes, base, used) throws(MetricFileError) -> Int in
                let (next, end, ended) = EntryBounds.known(from: read, to: trusted, at: base, in: bytes, base: base, used: used,
                                                           lengths: lengths, values: values, stamps: stamps)
                read = next
                // An entry that is not the known one, or one more: the merging thread reads the file.
                if ended || (read == trusted && end < used) { throw MetricFileError(path: path, kind: .vanished) }
                return end - base
            }
        }
        guard complete != nil, let identity, trusted == n, read == n else { return }
        // Read twice the same: mapped for the next scrape, unless its mapping still covers it.
        let mapping = known.mapping.map { $0.length >= used } == true ? nil : ReadMapping(path: path, identity: identity, length: used)
        ready = ReadValues(source: .file(identity: identity, used: used, mapping: mapping), count: n, values: values, stamps: stamps)
    }
}

/// The files of one merge, read ahead by threads while the merging thread merges them in
/// order (see the comment at the top of this file).
private final class ReadAhead: Sendable {
    let paths: [String]
    /// What the catalog knew of each file when the merge began (its entries and mapping),
    /// for the threads, which never look at the catalog the merging thread changes.
    let known: [KnownFile?]
    let skipDeadOwners: Bool
    private let slots: [ReadAheadSlot]

    private struct State {
        /// Per file: 0 not taken, 1 taken by a read-ahead thread, 2 read by it, 3 taken by the
        /// merging thread.
        var taken: [UInt8]
        /// The first file a read-ahead thread may still take.
        var next = 0
        /// Files `0..<merged` are merged, so file `i`'s slot is free once `i - slots < merged`.
        var merged = 0
        /// The file the merging thread waits for, and per read-ahead thread the `merged` count
        /// it waits for (-1: none).
        var mergerWaitsFor = -1
        var readerWaitsFor: [Int]
    }
    private let state: Locked<State>
    private let mergerWakes = DispatchSemaphore(value: 0)
    private let readerWakes: [DispatchSemaphore]

    init(paths: [String], known: [KnownFile?], skipDeadOwners: Bool, readers: Int) {
        self.paths = paths
        self.known = known
        self.skipDeadOwners = skipDeadOwners
        // Two files ahead per thread: one being read, one waiting for the merging thread.
        slots = (0..<(2 * readers + 1)).map { _ in ReadAheadSlot() }
        state = Locked(State(taken: [UInt8](repeating: 0, count: paths.count),
                             readerWaitsFor: [Int](repeating: -1, count: readers)))
        readerWakes = (0..<readers).map { _ in DispatchSemaphore(value: 0) }
    }

    /// Waits until `done` holds: first by asking again for a while (a file takes tens of
    /// microseconds, less than a thread takes to wake), then asleep on `wakes`, which whoever
    /// changes the state signals once it holds; `done` also records what is waited for.
    private func wait(on wakes: DispatchSemaphore, until done: () -> Bool) {
        for _ in 0..<200 {
            if done() { return }
            Sys.yieldProcessor()
        }
        while !done() { wakes.wait() }
    }

    /// Takes the first file from `next` on that the catalog knows and no thread has taken,
    /// below `limit`; marks it taken (1).
    private static func take(_ state: inout State, known: [KnownFile?], below limit: Int) -> Int? {
        while state.next < limit && (state.taken[state.next] != 0 || known[state.next] == nil) { state.next += 1 }
        guard state.next < limit else { return nil }
        state.taken[state.next] = 1
        return state.next
    }

    /// Reads file `i` (taken) into its slot and marks it read.
    private func prepare(_ i: Int) {
        slots[i % slots.count].prepare(path: paths[i], known: known[i], skipDeadOwners: skipDeadOwners)
        let wake = state.withLock { state in
            state.taken[i] = 2
            return state.mergerWaitsFor == i
        }
        if wake { mergerWakes.signal() }
    }

    /// The loop of read-ahead thread `r`: takes the next file the catalog knows that no
    /// thread has taken, waits for its slot, reads it.
    func read(as r: Int) {
        while let i = state.withLock({ Self.take(&$0, known: known, below: paths.count) }) {
            // The slot holds file `i - slots.count` until that file is merged.
            wait(on: readerWakes[r]) {
                state.withLock { state in
                    let free = state.merged > i - slots.count
                    state.readerWaitsFor[r] = free ? -1 : i - slots.count + 1
                    return free
                }
            }
            prepare(i)
        }
    }

    /// Calls `body` with the values a read-ahead thread read from file `i` (the files in
    /// order, each once); with nil where it read none, or where no thread had taken the file
    /// (the merging thread takes it then, and reads it itself). While a thread still reads
    /// file `i`, the merging thread reads ahead too.
    func merge<R: ~Copyable>(file i: Int, _ body: (ReadValues?) -> R) -> R {
        var fromSlot = false
        while true {
            // 0: merge it, 1: read ahead `ahead`, 2: wait.
            var ahead = -1
            let step = state.withLock { state in
                switch state.taken[i] {
                case 0 where known[i] == nil:
                    state.taken[i] = 3
                    return 0
                case 0:
                    // Read into its slot like any other, so that a file the catalog knows
                    // is merged the same way whoever reads it.
                    state.taken[i] = 1
                    ahead = i
                    return 1
                case 2:
                    fromSlot = true
                    return 0
                default:
                    // Files up to `i + slots.count - 1` have a free slot (file `i - 1` is merged).
                    if let j = Self.take(&state, known: known, below: Swift.min(paths.count, i + slots.count)) {
                        ahead = j
                        return 1
                    }
                    state.mergerWaitsFor = i
                    return 2
                }
            }
            if step == 0 { break }
            if step == 1 {
                prepare(ahead)
                continue
            }
            wait(on: mergerWakes) {
                state.withLock { state in
                    guard state.taken[i] == 1 else {
                        state.mergerWaitsFor = -1
                        return true
                    }
                    return false
                }
            }
        }
        let result = body(fromSlot ? slots[i % slots.count].ready : nil)
        let wake = state.withLock { state in
            state.merged = i + 1
            return state.readerWaitsFor.map { $0 >= 0 && $0 <= i + 1 }
        }
        for (r, wakes) in wake.enumerated() where wakes { readerWakes[r].signal() }
        return result
    }
}

extension MergeEngine {
    /// Merges the files at `paths` in the order given, with up to `threads - 1` threads
    /// reading ahead (see the comment at the top of this file) when the catalog knows them
    /// to hold `readAheadEntries` entries or more; the result is the same as
    /// ``add(paths:skipDeadOwners:)``'s.
    mutating func add(paths: [String], skipDeadOwners: Bool, threads: Int, readAheadEntries: Int) {
        let known = catalog.knownFiles.isEmpty ? [] : paths.map { catalog.knownFiles[$0] }
        let readers = Swift.min(threads - 1, known.count { $0 != nil } - 1)
        guard readers > 0, known.reduce(0, { $0 + ($1?.entries.keys.count ?? 0) }) >= readAheadEntries else {
            add(paths: paths, skipDeadOwners: skipDeadOwners)
            return
        }
        let ahead = ReadAhead(paths: paths, known: known, skipDeadOwners: skipDeadOwners, readers: readers)
        // A thread that cannot start leaves its share to the others and to the merging thread.
        for r in 0..<readers { try? Sys.startThread(name: "pmp-merge-read-\(r)") { ahead.read(as: r) } }
        var reader = MetricFileReader()
        defer { forgetFiles(except: paths) }
        for (i, path) in paths.enumerated() {
            ahead.merge(file: i) { ready in add(path: path, skipDeadOwners: skipDeadOwners, reader: &reader, ready: ready) }
        }
    }
}
