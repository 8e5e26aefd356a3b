// Worker modes for the maintenance tests (Tests/EndToEndTests/CompactionTests) and the soak
// (scripts/soak.sh): faults injected through the library's internal seams, so that no shipped
// binary carries a hook that kills it. And the collector's default thread count, as a process
// started under a CPU affinity sees it.
import MmapStore
import MultiprocessCollector
import SystemCalls

let maintenanceModes: [String: WorkerMode] = [
    "compact-crash-after": WorkerMode(usage: "compact-crash-after DIR STEP [native]", run: compactCrashAfterMode),
    "scan-in-use": WorkerMode(usage: "scan-in-use DIR [ROUNDS]", run: scanInUseMode),
    "merge-threads": WorkerMode(usage: "merge-threads DIR", run: mergeThreadsMode),
]

/// Prints `merge-threads N`: how many threads a collector of DIR merges on by default in this
/// process.
@Sendable func mergeThreadsMode(_ a: [String]) throws -> Int32 {
    let dir = try argument(a, 0, "merge-threads DIR")
    say("merge-threads \(MultiProcessCollector(directory: dir, includeSelfMetrics: false).mergeThreads)")
    return 0
}

/// Compacts DIR as `prom-multiproc-cli compact --dir DIR` does, and ends with SIGKILL right
/// after STEP (one of ``CompactionStep``: journal-staged, first-source-hidden, sources-hidden,
/// rechecked, archives-written, journal-written, first-archive-renamed, archives-renamed,
/// first-source-removed, sources-removed), as a compactor killed there would; with `native`,
/// after STEP of the native-histogram files' fold (which follows the `*.db` files' one). When
/// the compaction never reaches STEP (nothing to fold), prints what it did and exits 0.
@Sendable func compactCrashAfterMode(_ a: [String]) throws -> Int32 {
    let steps = CompactionStep.allCases.map(\.rawValue).joined(separator: "|")
    let usage = "compact-crash-after DIR \(steps) [native]"
    let dir = try argument(a, 0, usage)
    guard let step = CompactionStep(rawValue: try argument(a, 1, usage)) else { throw UsageError(description: usage) }
    guard a.count <= 2 || (a.count == 3 && a[2] == "native") else { throw UsageError(description: usage) }
    var options = CompactionOptions()
    let kill: @Sendable (CompactionStep) -> Void = { reached in if reached == step { Sys.killSelf() } }
    if a.count == 3 { options.afterNativeStep = kill } else { options.afterStep = kill }
    let r = try Compactor.compact(directory: dir, options: options)
    say("step \(step.rawValue) not reached: folded \(r.folded.count) file(s) into \(r.archives.count) archive(s), removed \(r.removed.count)")
    return 0
}

/// Scans /proc for the files of DIR's device in use, ROUNDS times (default 5), as compaction
/// does once per run (scripts/bench/liveness.py). Prints one line a round: milliseconds,
/// processes, files in use; and how many of DIR's `*.db` files are in use.
@Sendable func scanInUseMode(_ a: [String]) throws -> Int32 {
    let usage = "scan-in-use DIR [ROUNDS]"
    let dir = try argument(a, 0, usage)
    let rounds = a.count > 1 ? try intArgument(a, 1, usage) : 5
    let names = try DirectoryFiles.names(in: dir).filter { $0.hasSuffix(".db") }
    for _ in 0..<rounds {
        let scan = FilesInUse.scan(directory: dir)
        guard case .complete = scan.availability else { say("unavailable: \(scan.summary)"); return 1 }
        var used = 0
        for name in names {
            if let st = try? DirectoryFiles.status(dir + "/" + name), scan.state(of: st) == .inUse { used += 1 }
        }
        say("scan ms \(scan.seconds * 1000) processes \(scan.processes) in-use-on-device \(scan.inodes.count) db-files \(names.count) db-in-use \(used)")
    }
    return 0
}
