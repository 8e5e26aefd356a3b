import Foundation
import MmapStore
import Testing
import TestSupport

/// Behaviour that involves other processes: liveness, claiming, adoption, fork.
@Suite("Processes: liveness, claims, adoption, fork")
struct ProcessTests {
    /// Starts `hold DIR ID AMOUNT` and returns it with the path it claimed.
    func startHolder(_ dir: TempDirectory, id: String = "pid", amount: Double = 1) throws -> (WorkerProcess, String) {
        let w = try WorkerProcess(["hold", dir.path, id, String(amount)])
        let line = try #require(w.readLine(), "worker printed nothing")
        try #require(line.hasPrefix("ready "), "\(line)")
        return (w, String(line.dropFirst("ready ".count)))
    }

    @Test("a live writer's file probes alive; after SIGKILL it probes dead; a Python file probes unknown")
    func liveness() throws {
        let dir = TempDirectory("liveness")
        defer { dir.remove() }
        let (w, path) = try startHolder(dir)
        #expect(path == dir.file("counter_\(w.pid).db"))
        #expect(try Liveness.probe(path: path) == .alive)
        // The probe released its shared lock: the writer's lock is still the only one, and
        // probing again gives the same answer.
        #expect(try Liveness.probe(path: path) == .alive)
        w.kill()
        #expect(try Liveness.probe(path: path) == .dead)
        #expect(try decodedValues(path) == [#"["held", "held_total", {}, "h"]"#: 1])

        try pythonWrite(dir.path, pid: "99", [MetricOp(kind: .counter, name: "p", op: "inc").pythonSpec])
        #expect(try Liveness.probe(path: dir.file("counter_99.db")) == .unknown)
    }

    @Test("a name held by a live process is not shared: the claim moves to counter_<pid>-1.db")
    func claimMovesToSuffixedName() throws {
        let dir = TempDirectory("claim")
        defer { dir.remove() }
        let (w, path) = try startHolder(dir, id: "5150", amount: 3)
        defer { w.kill() }
        #expect(path == dir.file("counter_5150.db"))
        let store = try ProcessStore(directory: dir.path, identity: .fixed("5150"))
        let h = try store.series(kind: .counter, key: SeriesKey(family: "held", sample: "held_total", labels: [], help: "h"))
        #expect(h.value == 0)
        h.add(4)
        #expect(store.openPaths == [dir.file("counter_5150-1.db")])
        #expect(try Liveness.probe(path: dir.file("counter_5150-1.db")) == .alive)
        // A third claimant in this process also steps aside.
        let third = try MetricFile.claim(directory: dir.path, kind: .counter, pid: "5150")
        #expect(third.path == dir.file("counter_5150-2.db"))
        third.close()
        #expect(try decodedValues(dir.file("counter_5150.db")).values.first == 3)
        #expect(try decodedValues(dir.file("counter_5150-1.db")).values.first == 4)
        // Python's collector accepts the suffixed name and sums both.
        let samples = try pythonCollect(dir.path)
        #expect(samples.filter { $0.name == "held_total" }.map(\.value) == [7])
        store.close()
    }

    @Test("a file adopted after its owner died continues its values")
    func adoptionAfterDeath() throws {
        let dir = TempDirectory("adopt")
        defer { dir.remove() }
        let (w, path) = try startHolder(dir, id: "6060", amount: 41)
        w.kill()
        #expect(try Liveness.probe(path: path) == .dead)
        let store = try ProcessStore(directory: dir.path, identity: .fixed("6060"))
        let h = try store.series(kind: .counter, key: SeriesKey(family: "held", sample: "held_total", labels: [], help: "h"))
        #expect(h.value == 41)
        h.add(1)
        #expect(store.openPaths == [path])
        #expect(try Liveness.probe(path: path) == .alive)
        store.close()
        #expect(dbNames(dir) == ["counter_6060.db"])
        #expect(try decodedValues(path).values.first == 42)
    }

    @Test("after fork the parent's file does not change; the child's file has every known key")
    func fork() throws {
        let dir = TempDirectory("fork")
        defer { dir.remove() }
        let w = try WorkerProcess(["fork", dir.path])
        var lines: [String] = []
        while let l = w.readLine() { lines.append(l) }
        #expect(w.wait() == 0)
        let parentLine = try #require(lines.first { $0.hasPrefix("parent ") }, "\(lines)")
        let words = parentLine.split(separator: " ").map(String.init)
        let parent = words[1], child = words[3]
        #expect(parentLine.contains("unchanged true"))
        #expect(parentLine.contains("samefiles true"))
        #expect(parentLine.contains("childstatus 0"))
        #expect(parent != child)
        #expect(dbNames(dir) == ["counter_\(child).db", "counter_\(parent).db", "gauge_livesum_\(child).db", "gauge_livesum_\(parent).db"].sorted())
        let a = #"["forked", "forked_total", {"k": "a"}, "h"]"#, b = #"["forked", "forked_total", {"k": "b"}, "h"]"#
        let c = #"["forked", "forked_total", {"k": "c"}, "h"]"#, g = #"["fg", "fg", {}, "g"]"#
        // Parent: its values before the fork, plus its own add of 10 after the child ended.
        #expect(try decodedValues(dir.file("counter_\(parent).db")) == [a: 15, b: 0])
        #expect(try decodedValues(dir.file("gauge_livesum_\(parent).db")) == [g: 2])
        // Child: every key known at the fork, at zero, except what the child added.
        #expect(try decodedValues(dir.file("counter_\(child).db")) == [a: 1, b: 0, c: 7])
        #expect(try decodedValues(dir.file("gauge_livesum_\(child).db")) == [g: 0])
        // And Python merges it as expected.
        let samples = try pythonCollect(dir.path)
        #expect(samples.filter { $0.name == "forked_total" }.map(\.value) == [16, 0, 7])
        #expect(samples.filter { $0.name == "fg" }.map(\.value) == [2])
    }

    @Test("two stores of one process as two identities (as Python's tests do) write two files")
    func twoIdentitiesInOneProcess() throws {
        let dir = TempDirectory("identities")
        defer { dir.remove() }
        let key = SeriesKey(family: "c", sample: "c_total", labels: [], help: "h")
        let s1 = try ProcessStore(directory: dir.path, identity: .fixed("123"))
        let s2 = try ProcessStore(directory: dir.path, identity: .fixed("456"))
        try s1.series(kind: .counter, key: key).add(1)
        try s2.series(kind: .counter, key: key).add(2)
        s1.close(); s2.close()
        #expect(dbNames(dir) == ["counter_123.db", "counter_456.db"])
        #expect(try pythonCollect(dir.path).map(\.value) == [3])
    }
}
