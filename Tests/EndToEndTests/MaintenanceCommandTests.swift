import Foundation
import Testing
import MmapStore
import TestSupport

@Suite struct MarkDeadCommandTests {
    @Test func removesExactlyWhatPrometheusClientRemoves() throws {
        let dir = TempDirectory(); defer { dir.remove() }
        for kind in FileKind.allKinds {
            for owner in ["5", "55", "6"] { try makeFile(dir, kind: kind, owner: owner, entries: [(key("m", "m"), 1)]).close() }
        }
        let pythonCopy = try copyDirectory(dir); defer { pythonCopy.remove() }
        let ours = try cli(["mark-dead", "--pid", "5", "--dir", dir.path])
        #expect(ours.status == 0, "\(ours.stderr)")
        let theirs = try runPython("mark_dead.py", [pythonCopy.path, "5"])
        #expect(theirs.status == 0, "\(theirs.stderr)")
        let oursLeft = dir.names().filter { $0.hasSuffix(".db") }
        #expect(oursLeft == pythonCopy.names())
        #expect(oursLeft.count == 3 * 13 - 5)
        #expect(!oursLeft.contains("gauge_livesum_5.db") && oursLeft.contains("gauge_livesum_55.db") && oursLeft.contains("gauge_all_5.db"))
    }

    @Test func aFileHeldByALiveProcessIsKeptAndReported() throws {
        let dir = TempDirectory(); defer { dir.remove() }
        let held = try makeFile(dir, kind: .gauge(.livesum), owner: "5")  // this test process holds the lock
        try makeFile(dir, kind: .gauge(.liveall), owner: "5").close()
        let r = try cli(["mark-dead", "--pid", "5", "--dir", dir.path])
        #expect(r.status == 0)
        #expect(r.stderr.contains("gauge_livesum_5.db") && r.stderr.contains("live process"))
        #expect(dir.names().contains("gauge_livesum_5.db"))
        #expect(!dir.names().contains("gauge_liveall_5.db"))
        held.close()
    }

    @Test func usageErrorsExitTwoWithAOneLineMessage() throws {
        let dir = TempDirectory(); defer { dir.remove() }
        for args in [["mark-dead", "--dir", dir.path], ["mark-dead", "--pid", "x", "--dir", dir.path],
                     ["mark-dead", "--pid", "1", "--dir", dir.path + "/missing"], ["mark-dead", "--bogus"], ["nonsense"]] {
            let r = try cli(args)
            #expect(r.status == 2, "\(args)")
            #expect(!r.stderr.isEmpty)
        }
        let help = try cli(["mark-dead", "--help"])
        #expect(help.status == 0 && help.stdout.contains("exit codes"))
    }
}

@Suite struct WipeCommandTests {
    @Test func removesOnlyMetricFilesAndRefusesWhileWritersLive() throws {
        let dir = TempDirectory(); defer { dir.remove() }
        try makeFile(dir, kind: .counter, owner: "1").close()
        try makeFile(dir, kind: .gauge(.all), owner: "archive").close()
        let live = try makeFile(dir, kind: .histogram, owner: "2")
        _ = FileManager.default.createFile(atPath: dir.file("notes.txt"), contents: Data("keep".utf8))
        _ = FileManager.default.createFile(atPath: dir.file("weird_1.db"), contents: Data())
        let refused = try cli(["wipe", "--dir", dir.path])
        #expect(refused.status == 3)
        #expect(refused.stderr.contains("live writers"))
        #expect(dir.names().contains("counter_1.db"))
        let forced = try cli(["wipe", "--dir", dir.path, "--force"])
        #expect(forced.status == 0, "\(forced.stderr)")
        live.close()
        #expect(dir.names().filter { !$0.hasPrefix(".prom-multiproc.lock") } == ["notes.txt", "weird_1.db"])
    }
}

@Suite struct InspectCommandTests {
    @Test func showsEntriesAndFailsOnBadFiles() throws {
        let dir = TempDirectory(); defer { dir.remove() }
        try makeFile(dir, kind: .counter, owner: "1", entries: [(key("c", "c_total", [("a", "x")]), 3)]).close()
        let ok = try cli(["inspect", dir.file("counter_1.db")])
        #expect(ok.status == 0, "\(ok.stderr)")
        #expect(ok.stdout.contains("writer swift v1") && ok.stdout.contains("value=3.0") && ok.stdout.contains("\"c_total\""))
        _ = FileManager.default.createFile(atPath: dir.file("counter_2.db"), contents: Data())
        let bad = try cli(["inspect", dir.file("counter_1.db"), dir.file("counter_2.db")])
        #expect(bad.status == 1)
        #expect(bad.stderr.contains("counter_2.db") && bad.stderr.contains("empty"))
    }
}
