import MultiprocessCollector

/// `mark-dead --pid N`: prometheus_client's `mark_process_dead`, safe against pid reuse.
enum MarkDeadCommand {
    static let spec = OptionSpec(
        valued: [("dir", "the multiprocess directory (default: $PROMETHEUS_MULTIPROC_DIR)"), ("pid", "the pid of the process that died")],
        flags: [("no-proc-scan", "do not scan /proc: any file of N counts as in use while a process with pid N runs")])

    static let help = helpText(
        command: "mark-dead", synopsis: "--pid N [--dir DIR] [--no-proc-scan]",
        about: """
        Removes the live-mode gauge files (gauge_live*_N.db) of a dead process, exactly as
        prometheus_client's mark_process_dead does, except that a file a running process still
        holds (a reused pid) is left alone and reported: one whose lock is held, or that a
        process maps or has open (seen in /proc; where /proc cannot be used, any file of N
        while a process with pid N runs). Records N as dead for compaction's fallback (used
        only where /proc cannot be scanned), unless one of its files is in use or none is
        left to fold. Call it from a supervisor's child-exit hook (gunicorn: child_exit).
        """, spec: spec,
        exitCodes: "  0 done (also when there was nothing to remove)\n  1 a file could not be removed\n  2 usage error")

    static func run(_ args: Arguments) throws -> ExitCode {
        let dir = try args.directory()
        guard let pidText = args.values["pid"] else { throw UsageError(message: "--pid is required") }
        guard let pid = Int32(pidText), pid > 0 else { throw UsageError(message: "--pid must be a positive process id, not '\(pidText)'") }
        let report = try MarkDead.run(pid: pid, directory: dir, scansProcesses: !args.flags.contains("no-proc-scan"))
        for f in report.removed { printOut("removed \(f)\n") }
        for f in report.keptAlive { printError("mark-dead: kept \(dir)/\(f): in use by a live process (pid \(pid) reused?)") }
        if !report.inUse.isEmpty {
            printError("mark-dead: pid \(pid) not recorded as dead: a running process uses \(report.inUse.joined(separator: ", ")) (\(report.liveness))")
        }
        return .ok
    }
}

/// `compact`: fold dead processes' files into archives.
enum CompactCommand {
    static let spec = OptionSpec(
        valued: [("dir", "the multiprocess directory (default: $PROMETHEUS_MULTIPROC_DIR)")],
        flags: [("drop-dead-all-gauges", "also remove all/liveall gauge files of dead processes (their pid series vanish)"),
                ("check-python-pids", "where /proc cannot be scanned: treat prometheus_client files whose pid no process has as dead without mark-dead"),
                ("no-proc-scan", "do not scan /proc: for a directory shared with writers in other pid namespaces (containers), which /proc does not show"),
                ("verbose", "list every file folded, removed or kept, and how liveness was decided")])

    static let help = helpText(
        command: "compact", synopsis: "[--dir DIR] [options]",
        about: """
        Folds the files of dead processes into archive files (counter_archive.db, ...,
        native_archive.pmh for native histograms and summary quantiles) and removes them, keeping the merged output identical; removes live-mode gauge files of dead
        processes. A file is dead when no process holds its lock and no process maps it or has
        it open (one scan of /proc), whoever wrote it: prometheus_client's files need no
        mark-dead, and a file a reused pid's process uses is kept even after mark-dead. Where
        /proc cannot be scanned (another pid namespace, no permission), or with --no-proc-scan
        (a directory shared by containers, each with its own pid namespace, whose writers /proc
        cannot show), prometheus_client's files are folded only after mark-dead (or with
        --check-python-pids), and never while a process with their pid runs. Files are renamed
        out of the *.db and *.pmh names and checked again before they are folded, so a process that opens
        one meanwhile gets a fresh file or has its file put back. One compactor runs at a time
        (a second waits). Killed at any point, the next run completes or rolls back the
        interrupted one.
        """, spec: spec,
        exitCodes: "  0 done\n  1 a system error or an unreadable archive (nothing half-done is left visible)\n  2 usage error")

    static func run(_ args: Arguments) throws -> ExitCode {
        let dir = try args.directory()
        var options = CompactionOptions()
        options.dropDeadAllGauges = args.flags.contains("drop-dead-all-gauges")
        options.checkPythonPids = args.flags.contains("check-python-pids")
        options.scansProcesses = !args.flags.contains("no-proc-scan")
        let r = try Compactor.compact(directory: dir, options: options)
        if r.recovered { printOut("completed an interrupted compaction\n") }
        printOut("folded \(r.folded.count) file(s) into \(r.archives.count) archive(s), removed \(r.removed.count), kept \(r.kept.count)\n")
        if args.flags.contains("verbose") {
            printOut("liveness: \(r.liveness)\n")
            for f in r.folded { printOut("folded \(f)\n") }
            for f in r.removed { printOut("removed \(f)\n") }
            for k in r.kept { printOut("kept \(k.name): \(k.reason)\n") }
        }
        return .ok
    }
}

/// `wipe`: the start-up clean.
enum WipeCommand {
    static let spec = OptionSpec(
        valued: [("dir", "the multiprocess directory (default: $PROMETHEUS_MULTIPROC_DIR)")],
        flags: [("force", "wipe even while live writers hold files")])

    static let help = helpText(
        command: "wipe", synopsis: "[--dir DIR] [--force]",
        about: """
        Removes every metric file, archive and temporary file of this package and of
        prometheus_client from the directory, and nothing else: the clean a deployment does
        before starting its workers. Refuses while live writers hold files, unless --force.
        """, spec: spec,
        exitCodes: "  0 done\n  1 a file could not be removed\n  2 usage error\n  3 refused: live writers hold files")

    static func run(_ args: Arguments) throws -> ExitCode {
        let dir = try args.directory()
        do {
            let r = try Wipe.run(directory: dir, force: args.flags.contains("force"))
            printOut("removed \(r.removed.count) file(s)\n")
            return .ok
        } catch let e as Wipe.LiveWritersError {
            printError("wipe: \(dir): \(e)")
            return .refused
        }
    }
}
