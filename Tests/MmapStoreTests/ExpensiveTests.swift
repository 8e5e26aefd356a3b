import Foundation
import MmapStore
import Testing
import TestSupport

/// The slow, many-process tests: run one after another so that they do not fight over the
/// machine's cores (and so that their own timing, such as kills every few milliseconds, holds).
@Suite("Expensive: exactness, crash safety, growth under a reader", .serialized, .tags(.expensive))
struct ExpensiveTests {
    // MARK: exactness

    @Test("Expensive exactness: 4 processes × 2 threads × 1,000,000 increments on one shared series per file and on separate series",
          arguments: ["shared", "separate"])
    func expensiveExactness(_ layout: String) throws {
        let dir = TempDirectory("exact")
        defer { dir.remove() }
        let processes = 4, threads = 2, n = 1_000_000
        let workers = try (0..<processes).map { _ in
            try WorkerProcess(["increment", dir.path, String(threads), String(n), layout])
        }
        for w in workers {
            #expect(w.readLine() == "done")
            #expect(w.wait() == 0)
        }
        let files = dbNames(dir)
        #expect(files == workers.map { "counter_\($0.pid).db" }.sorted())
        var perSeries: [String: Double] = [:]
        var total = 0.0
        for f in files {
            for (key, value) in try decodedValues(dir.file(f)) {
                perSeries[f + " " + key] = value
                total += value
            }
        }
        #expect(total == Double(processes * threads * n))
        if layout == "shared" {
            #expect(perSeries.count == processes)
            #expect(perSeries.values.allSatisfy { $0 == Double(threads * n) })
            #expect(try pythonCollect(dir.path).map(\.value) == [Double(processes * threads * n)])
        } else {
            #expect(perSeries.count == processes * threads)
            #expect(perSeries.values.allSatisfy { $0 == Double(n) }, "\(perSeries)")
        }
    }

    @Test("Expensive exactness control: a non-atomic read-add-store loses updates, so the exactness test can fail")
    func expensiveExactnessControl() throws {
        let dir = TempDirectory("exact-control")
        defer { dir.remove() }
        let workers = try (0..<4).map { _ in try WorkerProcess(["increment", dir.path, "2", "1000000", "racy"]) }
        for w in workers {
            #expect(w.readLine() == "done")
            #expect(w.wait() == 0)
        }
        var total = 0.0
        for f in dbNames(dir) { total += try decodedValues(dir.file(f)).values.reduce(0, +) }
        #expect(total < 8_000_000, "no update was lost: the threads never overlapped")
        #expect(total >= 4_000_000)
    }

    // MARK: growth

    @Test("Expensive growth: a file grows from 64 KiB past 8 MiB while this process reads it; every read succeeds and only grows")
    func expensiveGrowthWhileReading() throws {
        let dir = TempDirectory("grow")
        defer { dir.remove() }
        let target = 8 << 20
        let w = try WorkerProcess(["grow", dir.path, String(target)])
        let first = try #require(w.readLine())
        try #require(first.hasPrefix("path "))
        let path = String(first.dropFirst(5))
        var reader = MetricFileReader()
        var reads = 0, lastCount = 0, lastFirst = 0.0
        var sizes = Set<Int>()
        var failures: [String] = []
        var countsSeen = Set<Int>()
        func readOnce() {
            do {
                let file = try reader.load(path: path)
                var count = 0
                var firstValue = 0.0
                try file.forEachEntry { e in
                    if count == 0 { firstValue = e.value }
                    count += 1
                }
                reads += 1
                sizes.insert(file.fileSize)
                countsSeen.insert(count)
                if count < lastCount { failures.append("entry count went from \(lastCount) to \(count)") }
                if firstValue < lastFirst { failures.append("first value went from \(lastFirst) to \(firstValue)") }
                lastCount = count
                lastFirst = firstValue
            } catch {
                failures.append("\(error)")
            }
        }
        while w.process.isRunning { readOnce() }
        let last = try #require(w.readLine())
        #expect(w.wait() == 0)
        readOnce()
        #expect(failures.isEmpty, "\(failures.prefix(5)) (\(failures.count) failures in \(reads) reads)")
        // "keys N first N capacity C"
        let words = last.split(separator: " ")
        let keys = Int(words[1]) ?? -1
        #expect(lastCount == keys)
        #expect(lastFirst == Double(keys))
        #expect(Int(words[5]) ?? 0 >= target)
        // Reads happened across several doublings: 64 KiB, 128 KiB, ... 8 MiB.
        let doublings = (0...7).map { 65_536 << $0 }
        #expect(Set(doublings).subtracting(sizes).count <= 2, "sizes seen: \(sizes.sorted())")
        #expect(countsSeen.count > 20, "reads saw only \(countsSeen.count) distinct entry counts")
        // And Python reads the result.
        let python = try pythonEntries([path])
        #expect(python.values.first?.count == keys)
    }

    // MARK: crash safety

    /// One writer slot of the crash test: restarted after every kill.
    final class CrashSlot {
        let dir: TempDirectory
        let identity: String
        let style: String
        var worker: WorkerProcess?
        init(dir: TempDirectory, identity: String, style: String) { self.dir = dir; self.identity = identity; self.style = style }

        /// Starts the writer; unless `early`, waits until it has claimed its files, so that
        /// the kill lands while it works. Early kills land in start-up, claim or adoption.
        func start(early: Bool = false) throws {
            let w = try WorkerProcess(["crash", dir.path, identity, style])
            if !early { _ = w.readLine() }
            worker = w
        }

        /// Owners whose files this slot writes.
        var owners: Set<String> {
            identity == "pid" ? Set(worker.map { ["\($0.pid)"] } ?? []) : [identity]
        }
    }

    @Test("Expensive crash safety: 270 SIGKILLs of writers at random moments; files always read and values never decrease")
    func expensiveCrashSafety() throws {
        let dir = TempDirectory("crash")
        defer { dir.remove() }
        // Slot 0 restarts as the same identity and adopts its files (values continue; a few
        // appends per run, so its files grow over the runs). Slot 1 restarts with its new real
        // pid each time (new files) and spends its time appending keys, so its kills land
        // during appends and growth.
        let slots = [CrashSlot(dir: dir, identity: "9000001", style: "hot"), CrashSlot(dir: dir, identity: "pid", style: "append")]
        for s in slots { try s.start() }
        // Entries never move inside a file, so an entry is identified by its offset; its key
        // length must stay the same and its value may only grow.
        var maxSeen: [String: [Int: (keyLength: Int, value: Double)]] = [:]
        var problems: [String] = []
        var reader = MetricFileReader()
        var filesChecked = 0, entriesChecked = 0

        func check(owners: Set<String>?) {
            for name in dbNames(dir) {
                if let owners, let parsed = MetricFileName(parsing: name), !owners.contains(parsed.owner) { continue }
                do {
                    let file = try reader.load(path: dir.file(name))
                    var seen = maxSeen[name] ?? [:]
                    var present = 0
                    try file.forEachEntry { e in
                        if let old = seen[e.offset] {
                            present += 1
                            if old.keyLength != e.key.count { problems.append("\(name): entry at \(e.offset) changed its key") }
                            if e.value < old.value { problems.append("\(name): entry at \(e.offset) went from \(old.value) to \(e.value)") }
                        }
                        seen[e.offset] = (e.key.count, max(e.value, seen[e.offset]?.value ?? -.infinity))
                        entriesChecked += 1
                    }
                    if present < (maxSeen[name]?.count ?? 0) { problems.append("\(name): lost \((maxSeen[name]?.count ?? 0) - present) entries") }
                    maxSeen[name] = seen
                    filesChecked += 1
                } catch {
                    problems.append("\(error)")
                }
            }
        }

        let rounds = 240
        var kills = 0
        for k in 0..<rounds {
            let slot = slots[k % slots.count]
            usleep(UInt32.random(in: 5_000...30_000))
            var owners = slot.owners.union(slots[(k + 1) % slots.count].owners)
            slot.worker?.kill()
            kills += 1
            check(owners: owners)
            if k % 8 == 7 {
                // Now and then, kill a writer 0–15 ms after it was started.
                try slot.start(early: true)
                usleep(UInt32.random(in: 0...15_000))
                owners.formUnion(slot.owners)
                slot.worker?.kill()
                kills += 1
                check(owners: owners)
            }
            try slot.start()
        }
        #expect(kills >= 200)
        for s in slots { s.worker?.kill() }
        check(owners: nil)
        #expect(problems.isEmpty, "\(problems.prefix(10)) (\(problems.count) problems)")
        // Every file also reads with Python's reader, and with decodeAll.
        let names = dbNames(dir)
        for name in names { _ = try MetricFileReader.decodeAll(path: dir.file(name)) }
        let python = try pythonEntries(names.map(dir.file))
        #expect(python.count == names.count)
        // The test did what it claims: many files, growth of the adopted files, many entries.
        let adopted = try readBytes(dir.file("counter_9000001.db")).count
        #expect(adopted >= 8 * 65_536, "the adopted counter file only reached \(adopted) bytes")
        #expect(names.count > rounds / 2, "\(names.count) files")
        // The append-style writers were killed while appending (below their cap of 6000
        // series), and their files had grown past the initial 64 KiB.
        var appendFiles = 0, stillAppending = 0, grown = 0
        for name in names where !name.contains("9000001") {
            appendFiles += 1
            let file = try reader.load(path: dir.file(name))
            var count = 0
            try file.forEachEntry { _ in count += 1 }
            if count < 2500 { stillAppending += 1 }  // a full run has about 3000 per file
            if file.fileSize > 65_536 { grown += 1 }
        }
        #expect(stillAppending >= appendFiles * 9 / 10, "\(stillAppending) of \(appendFiles) killed while appending")
        #expect(grown >= appendFiles / 4, "\(grown) of \(appendFiles) grew")
        let hot = try decodedValues(dir.file("counter_9000001.db")).filter { $0.key.hasPrefix(#"["hot""#) }
        #expect(hot.count == 4 && hot.values.allSatisfy { $0 > 100 }, "\(hot)")
        print("crash test: \(kills) kills, \(names.count) files (\(grown) append files grew), \(stillAppending) of \(appendFiles) killed while appending, \(filesChecked) file reads, \(entriesChecked) entries checked, adopted file \(adopted) bytes; temp files left: \(dir.names().filter { $0.hasPrefix(".tmp-") }.count)")
    }

    // MARK: full disk

    @Test("Full disk: on a ~1 MiB tmpfs, growth throws ENOSPC and the writer keeps running")
    func fullDisk() throws {
        let tiny = try ExternalTool.tinyTmpfs.path()
        var template = Array("\(tiny)/full-XXXXXX".utf8CString)
        try #require(template.withUnsafeMutableBufferPointer { mkdtemp($0.baseAddress!) } != nil, "mkdtemp in \(tiny)")
        let dir = template.withUnsafeBufferPointer { String(cString: $0.baseAddress!) }
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let w = try WorkerProcess(["fill-disk", dir])
        var lines: [String] = []
        while let l = w.readLine() { lines.append(l) }
        #expect(w.wait() == 0, "\(lines)")
        #expect(lines.count == 2, "\(lines)")
        let enospc = try #require(lines.first)
        #expect(enospc.hasPrefix("enospc posix_fallocate(\(dir)/counter_\(w.pid).db)"), "\(enospc)")
        #expect(enospc.contains("errno 28"))
        #expect(lines.last == "survived 3.0")
        let files = try FileManager.default.contentsOfDirectory(atPath: dir)
        #expect(files == ["counter_\(w.pid).db"], "no temporary file is left behind: \(files)")
        let decoded = try MetricFileReader.decodeAll(path: dir + "/counter_\(w.pid).db")
        #expect(decoded.entries.count > 50)
        #expect(decoded.entries.first?.value == 3)
    }
}
