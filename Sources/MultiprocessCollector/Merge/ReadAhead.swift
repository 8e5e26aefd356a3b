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
// What can move to other threads is reading files whose keys are known, which is most of a
// merge's work: a file the catalog read before (a serving collector's scrapes after its
// first), whose values are gathered through its kept mapping, or read from a file whose
// every entry is the one read before (checked by key length, as the merging thread checks
// it); and a file of a kind whose template the merging thread has made (``KeyTemplate``: the
// last good file of the kind, which most files of a directory repeat), compared with it byte
// for byte. Each read-ahead thread takes the next such file no thread has taken, reads its
// values into a slot of its own and hands them over; the merging thread adds them as if it had
// read the file itself (`MergeEngine.add(path:skipDeadOwners:reader:ready:)`). A file that
// differs in any way (replaced, grown, damaged, truncated under its mapping, another key) is
// handed over as nothing: the merging thread reads it itself and reports what it finds, as a
// merge on one thread would.
//
// The merging thread reads everything else, in order: the first file of each kind, whose keys
// it decodes, and files unlike their kind's template. (Handing a file's bytes to it from
// another core costs about what reading them does: tried, a fresh collect took longer.) While
// the file it needs next is still being read, it reads ahead too. Threads read at most `slots`
// files ahead of the merge, so memory stays bounded (a slot holds a file's values, 8 bytes an
// entry, and for a gauge file or one read before their timestamps, 8 more; see
// `ReadValues.stamps`); a file takes the slot freed last, so that a merge touches
// only as many slots as it holds files at once (a slot's first use maps new memory, a page
// fault per 4 KiB: on a fresh merge of 188 MB, about 1,600 faults fewer than taking them in
// turn).
//
// Decoding a kind's first file is the longest step of a fresh merge (tens of thousands of new
// keys), and the other threads need not wait for it: a read-ahead thread makes a *lead image*
// of that file (its bytes as it reads them, ``KeyTemplate/init(lead:valueOffsets:generation:)``)
// and compares the files after it with that while the merging thread decodes it; the window
// is then as wide as about `ReadAhead.window` entries. A file found equal to the lead image is
// handed over without key ids; the merging thread takes it as equal to its own template only
// when the keys it read from the lead file are the image's (``KeyTemplate/agreement(with:keys:)``:
// the file may have changed between the two reads) and the lead file was good, and reads it
// itself otherwise. When they are, the lead image stands for the merging thread's template,
// which is then not published.

/// The values and timestamps of every entry of a file whose keys are known, read by a
/// read-ahead thread into its slot.
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
        /// Read from a file the catalog does not know, `identity` (nil where its birth time is
        /// unknown), used as far as `used`, whose entries are the first of `sequence`'s, each
        /// equal to the template's entry byte for byte but for its value and timestamp.
        case template(identity: FileIdentity?, used: Int, sequence: KeySequence)
        /// Read as for `template`, from a file whose entries are the first of `lead`'s, a lead
        /// image made from its kind's first file before the merging thread decoded that file
        /// (``KeyTemplate/init(lead:valueOffsets:generation:)``): the merging thread takes it
        /// as `template` once it has read the same keys from that file.
        case lead(identity: FileIdentity?, used: Int, lead: KeyTemplate)
    }
    let source: Source
    let count: Int
    let values: UnsafePointer<Double>
    /// Nil where not read: from a `template` or `lead` counter, summary or histogram file,
    /// whose timestamps count only where a gauge file typed one of its families (then the
    /// merging thread reads the file itself: `MergeEngine.takeReadAhead`). Not writing them
    /// keeps a slot's memory to 8 bytes an entry, and touching new memory is dear.
    let stamps: UnsafePointer<Double>?
}

/// Where one read-ahead thread reads a file for the merging thread.
///
/// `@unchecked Sendable`, without run-time exclusivity checks: one thread at a time uses it,
/// handed over under ``ReadAhead``'s lock (the reading thread until it marks the file ready,
/// then the merging thread until it marks the file merged).
private final class ReadAheadSlot: @unchecked Sendable {
    @exclusivity(unchecked) var scratch = EntryScratch(capacity: 0)
    @exclusivity(unchecked) var ready: ReadValues?

    /// Reads the values of the file at `path`: if the catalog knows it (`known`) and it still
    /// holds the same entries, through its mapping when it is the file mapped, used as far,
    /// else from the file; if not, and its entries are `template`'s, from the file. Nil where
    /// anything differs or goes wrong.
    func prepare(path: String, known: KnownFile?, kind: FileKind?, template: KeyTemplate?, thread: ThreadTools) {
        ready = nil
        guard let known, known.entries.keys.count > 0 else {
            if let kind, let template { prepare(path: path, kind: kind, template: template, thread: thread) }
            return
        }
        let n = known.entries.keys.count
        if n > scratch.capacity { scratch.grow(to: n, keeping: 0) }
        let (values, stamps) = (scratch.values, scratch.stamps)
        if let mapping = known.mapping {
            guard case let (identity, used)? = try? thread.reader.peek(path: path) else { return }
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
            try thread.reader.streamEntries(path: path, opened: { opened, usedNow in
                identity = opened
                used = usedNow
                trusted = known.trustedEntries(opened: opened, used: usedNow)
            }) { (bytes, base, used) throws(MetricFileError) -> Int in
                let (next, end, ended) = EntryBounds.known(from: read, to: trusted, at: base, in: UnsafeRawBufferPointer(bytes),
                                                           base: base, used: used,
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

    /// Reads the file at `path` if its entries are the first of `template`'s (the merging
    /// thread's template of its kind, or its lead image).
    private func prepare(path: String, kind: FileKind, template: KeyTemplate, thread: ThreadTools) {
        if template.count > scratch.capacity { scratch.grow(to: template.count, keeping: 0) }
        // Key ids come from the template's sequence, not the slot; timestamps only count in
        // gauge files (see `ReadValues.stamps`).
        var stamps = false
        if case .gauge = kind { stamps = true }
        var identity: FileIdentity?
        var used = 0
        var read = 0
        let complete = try? thread.reader.streamEntries(path: path, opened: { opened, usedNow in
            identity = opened
            used = usedNow
        }) { (bytes, base, used) throws(MetricFileError) -> Int in
            let (next, end, differs) = template.match(from: read, at: base, in: bytes, base: base, used: used, into: scratch,
                                                      stamps: stamps)
            read = next
            // Another entry than the template's: the merging thread reads the file.
            if differs { throw MetricFileError(path: path, kind: .vanished) }
            return end - base
        }
        guard complete != nil, read > 0 else { return }
        let source: ReadValues.Source = template.sequence.map { .template(identity: identity, used: used, sequence: $0) }
            ?? .lead(identity: identity, used: used, lead: template)
        ready = ReadValues(source: source, count: read, values: scratch.values, stamps: stamps ? scratch.stamps : nil)
    }

    /// The lead image (``KeyTemplate/init(lead:valueOffsets:generation:)``) of the file at
    /// `path`: its whole entries up to the first that lies out of bounds; nil where it cannot
    /// be read or has fewer than a block of entries.
    static func lead(path: String, generation: Int, reader: inout MetricFileReader) -> KeyTemplate? {
        var image = UnsafeMutableRawBufferPointer(start: nil, count: 0)
        var offsets: [UInt32] = []
        do {
            _ = try reader.streamEntries(path: path, opened: { identity, used in
                // Without a birth time the merging thread does not remember the lead's keys,
                // so no file could be taken as equal to its image: none is made.
                if identity != nil { image = .allocate(byteCount: used, alignment: 8) }
            }) { (chunk, base, used) throws(MetricFileError) -> Int in
                guard image.count > 0 else { throw MetricFileError(path: path, kind: .vanished) }
                var pos = base
                var ended = false
                var found: [UInt32] = []
                found.reserveCapacity(chunk.count / 24 + 1)
                while pos < used {
                    let entry: (key: UnsafeRawBufferPointer, valueAt: Int, end: Int)?
                    do {
                        entry = try EntryBounds.entry(at: pos, in: UnsafeRawBufferPointer(chunk), base: base, used: used, path: path)
                    } catch {
                        ended = true
                        break
                    }
                    guard let (_, valueAt, end) = entry else { break }
                    found.append(UInt32(truncatingIfNeeded: base + valueAt))
                    pos = end
                }
                offsets.append(contentsOf: found)
                // The chunk lies inside `used`, the image's size.
                UnsafeMutableRawBufferPointer(rebasing: image[base..<pos]).copyMemory(from: UnsafeRawBufferPointer(rebasing: chunk[0..<(pos - base)]))
                // An entry out of bounds: the image ends before it.
                if ended { throw MetricFileError(path: path, kind: .vanished) }
                return pos - base
            }
        } catch {}
        guard offsets.count >= KeyTemplate.block else {
            image.deallocate()
            return nil
        }
        return KeyTemplate(lead: image, valueOffsets: offsets, generation: generation)
    }
}

/// What one thread reads files with: its reader, whose buffer stays in its cache from file to
/// file.
///
/// `@unchecked Sendable`, without run-time exclusivity checks: only its thread uses it.
private final class ThreadTools: @unchecked Sendable {
    @exclusivity(unchecked) var reader = MetricFileReader()
}

/// The files of one merge, read ahead by threads while the merging thread merges them in
/// order (see the comment at the top of this file).
private final class ReadAhead: Sendable {
    let paths: [String]
    /// What the catalog knew of each file when the merge began (its entries and mapping),
    /// for the threads, which never look at the catalog the merging thread changes.
    let known: [KnownFile?]
    /// Each file's kind, where a thread may read it though the catalog does not know it
    /// (nil: a bad name, or a live-mode gauge file whose owner may be dead, which the
    /// merging thread looks at first).
    let kinds: [FileKind?]
    /// Per kind: its lead file, the first file of it the catalog does not know when others
    /// of it follow, whose lead image a read-ahead thread makes when it has no file to read
    /// but those after it.
    let leads: [FileKind: Int]
    private let slots: [ReadAheadSlot]
    /// Per read-ahead thread, then for the merging thread: what it reads files with.
    private let tools: [ThreadTools]

    private struct State {
        /// Per file: 0 not taken, 1 taken to be read into its slot, 2 read into it, 3 taken by
        /// the merging thread to read itself.
        var taken: [UInt8]
        /// Files `0..<merged` are merged. Threads take files below `merged + slots`: at most
        /// as many files as slots hold one at once, so a file in that window always finds a
        /// slot free.
        var merged = 0
        /// The slots no file holds, the one freed last on top, and per file the slot it holds
        /// from being taken until merged (-1: none). A file takes the slot the last merged file
        /// freed: its buffers were touched already (on first use they are new memory, whose
        /// pages the system maps one fault at a time) and are likely still cached, so a merge
        /// touches only as many slots as it ever holds files at once.
        var freeSlots: [Int]
        var slotOf: [Int]
        /// Per kind: the merging thread's latest template, for files the catalog does not know,
        /// and the generation of the one it stands for (see `adopt`).
        var templates: [FileKind: KeyTemplate] = [:]
        var generations: [FileKind: Int] = [:]
        /// Per kind: the lead image of its lead file, for the files of it after that one while
        /// the merging thread has published no template; whether a thread is making it.
        var leadImages: [FileKind: KeyTemplate] = [:]
        var leadsTaken: Set<FileKind> = []
        /// Whether the merging thread waits for its file, and which threads wait for a file to
        /// take (woken by the next file merged or template made).
        var mergerWaits = false
        var readersWaiting: [Bool]
    }
    private let state: Locked<State>
    /// Entries the read-ahead slots of one merge hold at most, about (8 bytes each, 16 with
    /// timestamps), where the slots are more than two per thread.
    static let window = 1 << 19
    private let mergerWakes = DispatchSemaphore(value: 0)
    private let readerWakes: [DispatchSemaphore]

    /// - Parameter entriesPerFile: about how many entries a file holds.
    init(paths: [String], known: [KnownFile?], skipDeadOwners: Bool, readers: Int, entriesPerFile: Int) {
        self.paths = paths
        self.known = known
        kinds = paths.map { path in
            let base = MetricFileName.baseName(of: path)
            guard let name = MetricFileName(parsing: base) ?? MetricFileName(parsingStaged: base) else { return nil }
            if skipDeadOwners, case .gauge(let mode) = name.kind, mode.isLive { return nil }
            return name.kind
        }
        var leads: [FileKind: Int] = [:]
        var followed: Set<FileKind> = []
        for (i, kind) in kinds.enumerated() where known[i] == nil {
            guard let kind else { continue }
            if leads[kind] == nil { leads[kind] = i } else { followed.insert(kind) }
        }
        self.leads = leads.filter { followed.contains($0.key) }
        // Two files ahead per thread (one being read, one waiting for the merging thread);
        // where the merging thread will decode lead files, as many as hold about
        // `ReadAhead.window` entries, so that the threads read on meanwhile (a wider window
        // only costs where files are quick to read: the values handed over leave the cache).
        var count = 2 * readers + 1
        if !self.leads.isEmpty { count = Swift.max(count, Swift.min(paths.count, Self.window / Swift.max(1, entriesPerFile))) }
        slots = (0..<count).map { _ in ReadAheadSlot() }
        state = Locked(State(taken: [UInt8](repeating: 0, count: paths.count), freeSlots: Array((0..<count).reversed()),
                             slotOf: [Int](repeating: -1, count: paths.count), readersWaiting: [Bool](repeating: false, count: readers)))
        readerWakes = (0..<readers).map { _ in DispatchSemaphore(value: 0) }
        tools = (0...readers).map { _ in ThreadTools() }
    }

    /// Waits until `done` holds: first by asking again for a while (a file takes tens to
    /// hundreds of microseconds, about what a thread takes to wake), then asleep on `wakes`,
    /// which whoever changes the state signals; `done` also records that it waits.
    private func wait(on wakes: DispatchSemaphore, until done: () -> Bool) {
        for _ in 0..<200 {
            if done() { return }
            Sys.yieldProcessor()
        }
        while !done() { wakes.wait() }
    }

    /// The template a thread compares file `i` with, where it may read the file: the merging
    /// thread's, else the lead image for a file after its kind's lead file.
    private func template(for i: Int, in state: State) -> KeyTemplate? {
        guard known[i] == nil, let kind = kinds[i] else { return nil }
        if let template = state.templates[kind] { return template }
        guard let lead = leads[kind], i > lead else { return nil }
        return state.leadImages[kind]
    }

    /// Whether a thread may read file `i`: the catalog knows it, or there is a template to
    /// compare it with (and it is not a live-mode gauge file).
    private func readable(_ i: Int, in state: State) -> Bool {
        known[i] != nil ? kinds[i] != nil : template(for: i, in: state) != nil
    }

    /// Takes the first file no thread has taken that a thread may read, in the window of
    /// files threads may read ahead; marks it taken (1) and gives it a slot.
    private func take(_ state: inout State) -> Int? {
        let end = Swift.min(paths.count, state.merged + slots.count)
        var i = state.merged
        while i < end && (state.taken[i] != 0 || !readable(i, in: state)) { i += 1 }
        guard i < end, hold(i, &state) else { return nil }
        return i
    }

    /// Marks file `i` taken to be read into a slot (1) and gives it the slot freed last;
    /// false where none is free (never, in the window: see `State.merged`).
    private func hold(_ i: Int, _ state: inout State) -> Bool {
        guard let slot = state.freeSlots.popLast() else { return false }
        state.taken[i] = 1
        state.slotOf[i] = slot
        return true
    }

    /// Takes the making of a lead image the first file no thread has taken, in the window,
    /// waits for (see `leads`).
    private func takeLead(_ state: inout State) -> (FileKind, Int)? {
        let end = Swift.min(paths.count, state.merged + slots.count)
        for i in state.merged..<end where state.taken[i] == 0 && known[i] == nil {
            guard let kind = kinds[i], let lead = leads[kind], i > lead, state.templates[kind] == nil,
                  !state.leadsTaken.contains(kind) else { continue }
            state.leadsTaken.insert(kind)
            return (kind, lead)
        }
        return nil
    }

    /// Reads file `i` (taken) into its slot, `slot`, on thread `thread` (the merging thread's is
    /// the last) and marks it read.
    private func prepare(_ i: Int, slot: Int, template: KeyTemplate?, thread: Int) {
        slots[slot].prepare(path: paths[i], known: known[i], kind: kinds[i], template: template, thread: tools[thread])
        let wake = state.withLock { state in
            state.taken[i] = 2
            defer { state.mergerWaits = false }
            return state.mergerWaits
        }
        if wake { mergerWakes.signal() }
    }

    /// The loop of read-ahead thread `r`: takes the next file it may read, reads it, or where
    /// there is none, makes the lead image files after it need; ends when every file is
    /// taken.
    func read(as r: Int) {
        while true {
            var file: (Int, Int, KeyTemplate?)?
            var lead: (FileKind, Int)?
            var done = false
            wait(on: readerWakes[r]) {
                state.withLock { state in
                    if let i = take(&state) {
                        file = (i, state.slotOf[i], template(for: i, in: state))
                    } else if let next = takeLead(&state) {
                        lead = next
                    } else if !state.taken[state.merged...].contains(0) {
                        done = true
                    } else {
                        state.readersWaiting[r] = true
                        return false
                    }
                    state.readersWaiting[r] = false
                    return true
                }
            }
            if let (kind, i) = lead {
                // Generations below -1 (the merging thread's are 0 and up, -1 is none): one per file.
                let image = ReadAheadSlot.lead(path: paths[i], generation: -2 - i, reader: &tools[r].reader)
                let waking = state.withLock { state in
                    state.leadImages[kind] = image
                    return wakeReaders(&state)
                }
                for w in waking { readerWakes[w].signal() }
                continue
            }
            guard let (i, slot, template) = file, !done else { return }
            prepare(i, slot: slot, template: template, thread: r)
        }
    }

    /// Calls `body` with the values a thread read from file `i` (the files in order, each
    /// once), or with nil where the merging thread reads the file itself: no thread may read
    /// it, or the one that did found it not as expected. While another thread still reads
    /// file `i`, the merging thread reads the next files ahead too.
    func merge<R: ~Copyable>(file i: Int, _ body: (ReadValues?) -> R) -> R {
        var fromSlot: Int?
        while true {
            var ahead: (Int, Int, KeyTemplate?)?
            let mine = state.withLock { state in
                switch state.taken[i] {
                case 0 where !readable(i, in: state):
                    state.taken[i] = 3
                    return true
                case 2:
                    fromSlot = state.slotOf[i]
                    return true
                case 0:
                    // Read into a slot as another thread would, so that a file is merged the
                    // same way whoever reads it.
                    guard hold(i, &state) else {
                        state.taken[i] = 3
                        return true
                    }
                    ahead = (i, state.slotOf[i], template(for: i, in: state))
                default:
                    if let j = take(&state) { ahead = (j, state.slotOf[j], template(for: j, in: state)) }
                }
                return false
            }
            if mine { break }
            if let (j, slot, template) = ahead {
                prepare(j, slot: slot, template: template, thread: tools.count - 1)
                continue
            }
            wait(on: mergerWakes) {
                state.withLock { state in
                    state.mergerWaits = state.taken[i] == 1
                    return !state.mergerWaits
                }
            }
        }
        let result = body(fromSlot.map { slots[$0].ready } ?? nil)
        let waking = state.withLock { state in
            if state.slotOf[i] >= 0 {
                state.freeSlots.append(state.slotOf[i])
                state.slotOf[i] = -1
            }
            state.merged = i + 1
            return wakeReaders(&state)
        }
        for r in waking { readerWakes[r].signal() }
        return result
    }

    /// Makes `template` the one threads compare files of `kind` with.
    func publish(_ template: KeyTemplate, for kind: FileKind) {
        let waking = state.withLock { state in
            state.templates[kind] = template
            state.generations[kind] = template.generation
            return wakeReaders(&state)
        }
        for r in waking { readerWakes[r].signal() }
    }

    /// The lead image of `kind`'s lead file, once made.
    func leadImage(of kind: FileKind) -> KeyTemplate? {
        state.withLock { $0.leadImages[kind] }
    }

    /// Records that the merging thread's template of `kind` of `generation` holds the keys of
    /// the kind's lead image, which threads go on comparing files with instead.
    func adopt(_ generation: Int, for kind: FileKind) {
        state.withLock { state in
            state.generations[kind] = generation
            // A template of an earlier file of the kind no longer stands for the latest keys.
            state.templates[kind] = nil
        }
    }

    /// The threads that wait for a file to take, no longer marked waiting.
    private func wakeReaders(_ state: inout State) -> [Int] {
        var waking: [Int] = []
        for r in state.readersWaiting.indices where state.readersWaiting[r] {
            state.readersWaiting[r] = false
            waking.append(r)
        }
        return waking
    }

    /// The generation of the merging thread's template that threads compare files of `kind`
    /// with, or its lead image in its place (-1: none).
    func publishedGeneration(of kind: FileKind) -> Int {
        state.withLock { $0.generations[kind] ?? -1 }
    }
}

extension MergeEngine {
    /// Merges the files at `paths` in the order given, with up to `threads - 1` threads
    /// reading ahead (see the comment at the top of this file) when the files hold about
    /// `readAheadEntries` entries or more; the result is the same as
    /// ``add(paths:skipDeadOwners:)``'s.
    mutating func add(paths: [String], skipDeadOwners: Bool, threads: Int, readAheadEntries: Int) {
        let readers = Swift.min(threads - 1, paths.count - 1)
        let known = readers > 0 ? paths.map { catalog.knownFiles[$0] } : []
        // Known files by their entries; a fresh catalog's files by their size (an entry of a
        // prometheus_client file takes about 100 bytes).
        let entries = readers == 0 ? 0 : catalog.knownFiles.isEmpty ? Self.bytes(of: paths) / 100
            : known.reduce(0, { $0 + ($1?.entries.keys.count ?? 0) })
        // Entries per file, for the window: of the files whose entries are counted.
        let counted = catalog.knownFiles.isEmpty ? paths.count : known.count { $0 != nil }
        guard readers > 0, entries >= readAheadEntries else {
            add(paths: paths, skipDeadOwners: skipDeadOwners)
            return
        }
        let ahead = ReadAhead(paths: paths, known: known, skipDeadOwners: skipDeadOwners, readers: readers,
                              entriesPerFile: entries / Swift.max(1, counted))
        // The last file of each kind: no template is made for files that do not follow.
        var last: [FileKind: Int] = [:]
        for (i, kind) in ahead.kinds.enumerated() { if let kind { last[kind] = i } }
        // A thread that cannot start leaves its share to the others and to the merging thread.
        for r in 0..<readers { try? Sys.startThread(name: "pmp-merge-read-\(r)") { ahead.read(as: r) } }
        var reader = MetricFileReader()
        defer { forgetFiles(except: paths) }
        // Per lead image: how many of its first entries hold the keys this thread read from
        // its lead file, `entries`.
        var agreements: [ObjectIdentifier: Int] = [:]
        func agreement(_ lead: KeyTemplate, _ entries: KeySequence) -> Int {
            if let known = agreements[ObjectIdentifier(lead)] { return known }
            let agreeing = lead.agreement(with: entries, keys: catalog.keys)
            agreements[ObjectIdentifier(lead)] = agreeing
            return agreeing
        }
        // A lead hand-over for file `i` as a template one, when its kind's lead file was merged
        // good and the lead image holds that file's keys for every value handed over; nil
        // otherwise (the file is read again). Any other hand-over as it is.
        func resolve(_ ready: ReadValues?, file i: Int) -> ReadValues? {
            guard let values = ready, case let .lead(identity, used, lead) = values.source else { return ready }
            guard let kind = ahead.kinds[i], let leadFile = ahead.leads[kind],
                  let entries = catalog.knownFiles[paths[leadFile]]?.entries, values.count <= agreement(lead, entries)
            else { return nil }
            return ReadValues(source: .template(identity: identity, used: used, sequence: entries), count: values.count,
                              values: values.values, stamps: values.stamps)
        }
        for (i, path) in paths.enumerated() {
            ahead.merge(file: i) { ready in
                add(path: path, skipDeadOwners: skipDeadOwners, reader: &reader, ready: resolve(ready, file: i))
            }
            // A new template of this kind, for the files of it still to come; the lead image
            // stands for it where it holds the same keys.
            if let kind = ahead.kinds[i], let end = last[kind], end > i, let generation = templateGeneration(for: kind),
               generation != ahead.publishedGeneration(of: kind) {
                if ahead.leads[kind] == i, let lead = ahead.leadImage(of: kind), let entries = catalog.knownFiles[path]?.entries,
                   entries.keys.count == lead.count, agreement(lead, entries) == lead.count {
                    ahead.adopt(generation, for: kind)
                } else if let template = keyTemplate(for: kind) {
                    ahead.publish(template, for: kind)
                }
            }
        }
    }

    /// The bytes the files at `paths` hold, as far as their sizes say.
    private static func bytes(of paths: [String]) -> Int {
        paths.reduce(0) { total, path in total + ((try? Sys.lstat(path))?.size ?? 0) }
    }
}
