import Dispatch
import MmapStore
import Synchronization
import SystemCalls

// The merge on several threads, with the output of the merge on one.
//
// Reading is most of a merge's work: every entry of every file is copied out of the page
// cache, bounds-checked and its key looked up. Deciding what the entries mean (decoding new
// keys, a family's type and mode, sums in file order) is little work but order-dependent. So
// the merge runs in two stages:
//
// 1. Threads take files in turn and read each one whole (`MergeWorker.prepare`), without
//    touching the catalog: a key the catalog already knows (from the previous scrape) is
//    resolved to its id through a read-only lookup; any other key is interned in the thread's
//    own `KeyInterner` and recorded by its local id. Structural problems (header, bounds,
//    truncation) end a file's read as they end it in the sequential reader.
// 2. One thread goes through the files in name order (`MergeEngine.finishRead`), interns each
//    local key in the catalog the first time it meets it, checks every entry's key as the
//    sequential reader does, and accumulates the file. So keys get the catalog ids they get
//    in a sequential merge (first seen, in file order), the same problems are reported for
//    the same files, and every sum is added in the same order: the output bytes are the same
//    whatever the number of threads.

/// One file read by a merge thread, waiting for the ordered stage.
///
/// `@unchecked Sendable`, and its stored properties free of run-time exclusivity checks (which
/// cost more than reading an entry): one merge thread fills it, and the ordered stage reads it
/// only after every thread is done.
final class FileRead: @unchecked Sendable {
    enum Outcome {
        /// Not taken by a thread (never the case once the threads are done).
        case unread
        /// A problem found before reading (a bad name).
        case problem(MetricFileError)
        /// A live-mode gauge file whose owner is dead.
        case deadOwner
        /// Left out without a problem (a live-mode gauge file removed since the listing).
        case skipped
        /// Read: `count` entries, then `error` if the read stopped early.
        case read
    }

    let path: String
    @exclusivity(unchecked) var outcome = Outcome.unread
    @exclusivity(unchecked) var name: MetricFileName?
    /// The thread whose interner holds this file's local keys.
    @exclusivity(unchecked) var worker = 0
    /// Per entry: the catalog's key id (>= 0), or `-1 - id` for the thread's local key `id`;
    /// the value and the timestamp.
    @exclusivity(unchecked) var entries = EntryScratch(capacity: 0)
    @exclusivity(unchecked) var count = 0
    /// What stopped the read after `count` good entries.
    @exclusivity(unchecked) var error: MetricFileError?
    /// Whether every entry's key was known to the catalog, valid, and the one the catalog's
    /// hints expected: then the ordered stage has nothing to intern, check or re-link, and
    /// only accumulates (a warm scrape of a directory whose processes keep their series).
    @exclusivity(unchecked) var asHinted = true
    /// The file opened (nil where its birth time is unknown) and how far it was used.
    @exclusivity(unchecked) var identity: FileIdentity?
    @exclusivity(unchecked) var used = 0
    /// How many first entries were those of the catalog's ``KnownFile`` of this path, trusted
    /// as `MergeEngine.check` trusts them; and that file's entries when they were all of them.
    @exclusivity(unchecked) var trusted = 0
    @exclusivity(unchecked) var known: KeySequence?

    init(path: String) { self.path = path }
}

/// What one merge thread keeps: the keys it met that the catalog did not know.
///
/// `@unchecked Sendable`, without run-time exclusivity checks, for the reason `FileRead` is:
/// one thread uses it at a time (its merge thread, then the ordered stage).
final class MergeWorker: @unchecked Sendable {
    @exclusivity(unchecked) var local = KeyInterner()
    /// Per local key: the local key that followed it last (the interner's hint).
    @exclusivity(unchecked) private var localSuccessor: [Int32] = []
    /// Per local key: its catalog id once the ordered stage interned it, else -1.
    @exclusivity(unchecked) var toCatalog: [Int32] = []
    @exclusivity(unchecked) private var reader = MetricFileReader()

    /// Reads `file` as `MergeEngine.add(paths:skipDeadOwners:)` would, up to the catalog.
    func prepare(_ file: FileRead, worker: Int, skipDeadOwners: Bool, catalog: UnsafePointer<KeyCatalog>) {
        file.worker = worker
        let path = file.path
        let base = MetricFileName.baseName(of: path)
        guard let name = MetricFileName(parsing: base) ?? MetricFileName(parsingStaged: base) else {
            file.outcome = .problem(MetricFileError(path: path, kind: .badName(MetricFileName.problem(with: base))))
            return
        }
        file.name = name
        let isLiveGauge: Bool
        if case .gauge(let mode) = name.kind { isLiveGauge = mode.isLive } else { isLiveGauge = false }
        if isLiveGauge && skipDeadOwners {
            do {
                if try Liveness.probe(path: path) == .dead {
                    file.outcome = .deadOwner
                    return
                }
            } catch {
                if error.errno == .noEntry {
                    file.outcome = .skipped
                    return
                }
            }
        }
        do {
            try read(file, kind: name.kind, catalog: catalog)
        } catch {
            if case .vanished = error.kind, isLiveGauge {
                file.outcome = .skipped
                return
            }
            file.error = error
        }
        file.outcome = .read
    }

    private func read(_ file: FileRead, kind: FileKind, catalog: UnsafePointer<KeyCatalog>) throws(MetricFileError) {
        var n = 0
        var previous: Int32 = -1
        var previousLocal: Int32 = -1
        var trusted = 0
        defer {
            file.count = n
            file.trusted = Swift.min(trusted, n)
        }
        let path = file.path
        // A catalog that knows no key (a fresh process) is not worth a lookup per entry.
        let catalogKnowsKeys = catalog.pointee.keys.count > 0
        // The catalog is only read here (the ordered stage waits for the threads).
        let known = catalog.pointee.knownFiles[path]
        let sequence = known?.entries ?? KeySequence()
        _ = try sequence.withUnsafeBuffers { (knownKeys, knownLengths) throws(MetricFileError) in
            try reader.streamEntries(path: path, opened: { opened, used in
                file.identity = opened
                file.used = used
                trusted = known?.trustedEntries(opened: opened, used: used) ?? 0
            }) { (bytes, base, used) throws(MetricFileError) -> Int in
                try scan(bytes, base: base, used: used, path: path, kind: kind, file: file, catalog: catalog,
                         catalogKnowsKeys: catalogKnowsKeys, count: &n, previous: &previous, previousLocal: &previousLocal,
                         trusted: &trusted, knownKeys: knownKeys, knownLengths: knownLengths)
            }
        }
        if trusted > 0 && trusted == n { file.known = sequence }
    }

    /// Bounds-checks the whole entries in `bytes` exactly as `MergeEngine.checkEntries` does
    /// and resolves their keys (the first `trusted` from `knownKeys`, as it does); returns the
    /// bytes consumed.
    private func scan(_ bytes: UnsafeRawBufferPointer, base: Int, used: Int, path: String, kind: FileKind, file: FileRead,
                      catalog: UnsafePointer<KeyCatalog>, catalogKnowsKeys: Bool, count n: inout Int, previous: inout Int32,
                      previousLocal: inout Int32, trusted: inout Int, knownKeys: UnsafeBufferPointer<Int32>,
                      knownLengths: UnsafeBufferPointer<Int32>) throws(MetricFileError) -> Int {
        let most = n + bytes.count / 24 + 1
        if most > file.entries.capacity { file.entries.grow(to: most, keeping: n) }
        let keys = file.entries.keys, values = file.entries.values, stamps = file.entries.stamps
        var pos = base
        if n < trusted {
            let (i, end, ended) = EntryBounds.known(from: n, to: trusted, at: pos, in: bytes, base: base, used: used,
                                                    lengths: knownLengths, values: values, stamps: stamps)
            if i > n {
                (keys + n).update(from: knownKeys.baseAddress! + n, count: i - n)
                previous = knownKeys[i - 1]
            }
            n = i
            pos = end
            if ended { trusted = i }
            if n < trusted { return pos - base }
        }
        while pos < used {
            guard case let (key, valueAt, end)? = try EntryBounds.entry(at: pos, in: bytes, base: base, used: used, path: path) else { break }
            var id: Int32 = -1
            var hint: Int32 = -1
            if catalogKnowsKeys {
                if previous >= 0 {
                    hint = catalog.pointee.successor[Int(previous)]
                } else {
                    hint = n == 0 ? catalog.pointee.firstKeyOfKind[kind] ?? -1 : -1
                }
                id = catalog.pointee.keys.find(key, hint: hint)
            }
            if id >= 0 {
                keys[n] = id
                previous = id
                if file.asHinted && (id != hint || !Self.isValid(id, histogramFile: kind == .histogram, catalog: catalog)) {
                    file.asHinted = false
                }
            } else {
                file.asHinted = false
                previous = -1
                let localHint = previousLocal >= 0 ? localSuccessor[Int(previousLocal)] : -1
                let (l, isNew) = local.intern(key, hint: localHint)
                if isNew { localSuccessor.append(-1) }
                if previousLocal >= 0 && l != localHint { localSuccessor[Int(previousLocal)] = l }
                previousLocal = l
                keys[n] = -1 - l
            }
            values[n] = Double(bitPattern: UInt64(littleEndian: bytes.loadUnaligned(fromByteOffset: valueAt, as: UInt64.self)))
            stamps[n] = Double(bitPattern: UInt64(littleEndian: bytes.loadUnaligned(fromByteOffset: valueAt + 8, as: UInt64.self)))
            n += 1
            pos = end
        }
        return pos - base
    }
}

extension MergeWorker {
    /// Whether key `id` passes the ordered stage's checks (it decodes; in a histogram file, its
    /// `le` is a number). Known keys keep their series, so this holds for the whole merge.
    @inline(__always)
    static func isValid(_ id: Int32, histogramFile: Bool, catalog: UnsafePointer<KeyCatalog>) -> Bool {
        let series = catalog.pointee.keySeries[Int(id)]
        return series >= 0 && !(histogramFile && catalog.pointee.seriesLeState[Int(series)] == 2)
    }
}

/// The index of the next file a merge thread takes.
private final class NextFile: Sendable {
    let index = Atomic<Int>(0)
}

/// The catalog, shared read-only with the merge threads while the ordered stage waits.
private struct SharedCatalog: @unchecked Sendable {
    let pointer: UnsafePointer<KeyCatalog>
}

extension MergeEngine {
    /// Merges the files at `paths` in the order given, reading them on up to `threads` threads
    /// (see the comment at the top of this file); the result is the same as
    /// ``add(paths:skipDeadOwners:)``'s.
    mutating func add(paths: [String], skipDeadOwners: Bool, threads: Int) {
        let threads = Swift.min(threads, paths.count)
        if threads <= 1 {
            add(paths: paths, skipDeadOwners: skipDeadOwners)
            return
        }
        let files = paths.map(FileRead.init)
        let workers = (0..<threads).map { _ in MergeWorker() }
        let next = NextFile()
        withUnsafePointer(to: catalog) { pointer in
            let shared = SharedCatalog(pointer: pointer)
            DispatchQueue.concurrentPerform(iterations: threads) { w in
                let worker = workers[w]
                while true {
                    let i = next.index.wrappingAdd(1, ordering: .relaxed).oldValue
                    if i >= files.count { break }
                    worker.prepare(files[i], worker: w, skipDeadOwners: skipDeadOwners, catalog: shared.pointer)
                }
            }
        }
        for file in files {
            finishRead(file, worker: workers[file.worker])
            file.entries = EntryScratch(capacity: 0)
        }
        forgetFiles(except: paths)
    }

    /// The ordered stage for one file: interns its new keys, checks its keys, accumulates it.
    private mutating func finishRead(_ file: FileRead, worker: MergeWorker) {
        switch file.outcome {
        case .problem(let error):
            problems.append(error)
            return
        case .deadOwner:
            deadOwnerFiles.append(file.path)
            return
        case .skipped, .unread:
            return
        case .read:
            break
        }
        guard let name = file.name else { return }
        knownEntries += file.trusted
        if file.asHinted {
            // Nothing to intern, check or re-link: the sequential reader would have found the
            // same, and stopped only where this read stopped.
            if let error = file.error {
                problems.append(error)
                return
            }
            let entries = file.identity.map {
                remember(path: file.path, identity: $0, used: file.used, kind: name.kind, count: file.count,
                         keys: file.entries.keys, known: file.known)
            }
            accumulate(count: file.count, name: name, entries: entries, keys: file.entries.keys, values: file.entries.values,
                       timestamps: file.entries.stamps)
            return
        }
        let kind = name.kind
        let isHistogramFile = kind == .histogram
        let count = file.count
        if count > scratch.capacity { scratch.grow(to: count, keeping: 0) }
        var toCatalog: [Int32] = []
        swap(&toCatalog, &worker.toCatalog)
        defer { swap(&toCatalog, &worker.toCatalog) }
        if toCatalog.count < worker.local.count {
            toCatalog.append(contentsOf: repeatElement(-1, count: worker.local.count - toCatalog.count))
        }
        let keys = file.entries.keys, values = file.entries.values, stamps = file.entries.stamps
        var keyError: MetricFileError?
        var n = 0
        var previous: Int32 = -1
        while n < count {
            var id = keys[n]
            if id < 0 {
                let l = Int(-1 - id)
                id = toCatalog[l]
                if id < 0 {
                    let bytes = worker.local.bytes(of: Int32(l))
                    let (interned, isNew) = catalog.keys.intern(bytes, hint: -1)
                    if isNew { catalog.decode(id: interned, key: bytes, histogramFile: isHistogramFile) }
                    toCatalog[l] = interned
                    id = interned
                }
            }
            // The interner's hints, as a sequential read leaves them.
            if previous >= 0 {
                if catalog.successor[Int(previous)] != id { catalog.successor[Int(previous)] = id }
            } else if catalog.firstKeyOfKind[kind] != id {
                catalog.firstKeyOfKind[kind] = id
            }
            previous = id
            let series = catalog.keySeries[Int(id)]
            if series < 0 {
                keyError = MetricFileError(path: file.path, kind: .invalidKey(
                    offset: offset(ofEntry: n, in: file, worker: worker),
                    catalog.keyErrors[id] ?? KeyDecodingError(offset: 0, reason: "invalid key")))
                break
            }
            if isHistogramFile && catalog.seriesLeState[Int(series)] == 2 {
                let le = catalog.seriesLabels[Int(series)].first { $0.name == "le" }?.value ?? ""
                keyError = MetricFileError(path: file.path, kind: .invalidKey(
                    offset: offset(ofEntry: n, in: file, worker: worker),
                    KeyDecodingError(offset: 0, reason: "bucket bound le=\"\(le)\" is not a number")))
                break
            }
            scratch.keys[n] = id
            scratch.values[n] = values[n]
            scratch.stamps[n] = stamps[n]
            n += 1
        }
        // The sequential reader stops at the first bad entry and then reads the rest of the
        // file, so an error of the file (truncation, a failed read) wins over a bad key, and a
        // bad key over an entry out of bounds further on.
        if let error = file.error {
            if case .entryOutOfBounds = error.kind, keyError != nil {} else {
                problems.append(error)
                return
            }
        }
        if let keyError {
            problems.append(keyError)
            return
        }
        let entries = file.identity.map {
            remember(path: file.path, identity: $0, used: file.used, kind: kind, count: n, keys: scratch.keys, known: nil)
        }
        accumulate(count: n, name: name, entries: entries, keys: scratch.keys, values: scratch.values, timestamps: scratch.stamps)
    }

    /// The file offset of entry `n`: the header, then each entry's length, key, padding and
    /// 16 bytes of value and timestamp.
    private func offset(ofEntry n: Int, in file: FileRead, worker: MergeWorker) -> Int {
        var pos = FileFormat.headerSize
        for i in 0..<n {
            let id = file.entries.keys[i]
            let length = id >= 0 ? catalog.keys.bytes(of: id).count : worker.local.bytes(of: -1 - id).count
            pos += 4 + length + FileFormat.padding(keyLength: length) + 16
        }
        return pos
    }
}
