import Foundation
import Testing

/// The package's `swift-metrics-worker`, run as a real child process (never fork() in the test
/// runner), with crash reports off so that a crashing child cannot hang the run.
final class Worker: @unchecked Sendable {
    let process = Process()
    private let input = Pipe()
    private let output = Pipe()
    private let errors = Pipe()

    /// The directory holding the package's executables: next to the test binary.
    static var productsDirectory: String {
        let exe = (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? CommandLine.arguments[0]
        var dir = (exe as NSString).deletingLastPathComponent
        if dir.hasSuffix(".xctest") { dir = (dir as NSString).deletingLastPathComponent }
        return dir
    }

    init(_ arguments: [String], multiprocessDirectory: String?) throws {
        process.executableURL = URL(fileURLWithPath: Self.productsDirectory + "/swift-metrics-worker")
        process.arguments = arguments
        var environment = ProcessInfo.processInfo.environment
        environment["SWIFT_BACKTRACE"] = "enable=no"
        environment["PROMETHEUS_MULTIPROC_DIR"] = multiprocessDirectory
        environment.removeValue(forKey: "prometheus_multiproc_dir")
        process.environment = environment
        process.standardInput = input
        process.standardOutput = output
        process.standardError = errors
        try process.run()
        // A watchdog: a stuck child fails its test instead of hanging the run.
        let pid = process.processIdentifier
        DispatchQueue.global().asyncAfter(deadline: .now() + 120) { [process] in
            if process.isRunning && process.processIdentifier == pid { process.terminate() }
        }
    }

    /// One line of the child's standard output (nil at its end).
    func readLine() -> String? {
        var bytes: [UInt8] = []
        while true {
            let chunk = output.fileHandleForReading.readData(ofLength: 1)
            guard let byte = chunk.first else { return bytes.isEmpty ? nil : String(decoding: bytes, as: UTF8.self) }
            if byte == UInt8(ascii: "\n") { return String(decoding: bytes, as: UTF8.self) }
            bytes.append(byte)
        }
    }

    /// Closes the child's standard input, waits for its end, and returns its status and
    /// standard error.
    func finish() -> (status: Int32, signaled: Bool, stderr: String) {
        try? input.fileHandleForWriting.close()
        let stderr = String(decoding: errors.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        return (process.terminationStatus, process.terminationReason == .uncaughtSignal, stderr)
    }
}

@Suite struct MultiprocessTests {
    /// Two worker processes bootstrap swift-metrics with the backend (multiprocess mode from
    /// PROMETHEUS_MULTIPROC_DIR) and write from two threads each; the merge is exact.
    @Test func twoWorkerProcessesMergeExactly() throws {
        let dir = TempDirectory()
        defer { dir.remove() }
        let iterations = 20_000
        let threads = 2
        let workers = try (0..<2).map { _ in
            try Worker(["write", "\(iterations)", "\(threads)"], multiprocessDirectory: dir.path)
        }
        for worker in workers { #expect(worker.readLine() == "ready") }

        let n = Double(workers.count * iterations * threads)
        let live = collect(dir)
        #expect(live.samples[#"worker_requests_total{route="/a"}"#] == n)
        #expect(live.samples["worker_bytes_total{}"] == n * 0.5)
        #expect(live.samples[#"worker_latency_bucket{le="0.005",route="/a"}"#] == n)
        #expect(live.samples[#"worker_latency_bucket{le="+Inf",route="/a"}"#] == n)
        #expect(live.samples[#"worker_latency_count{route="/a"}"#] == n)
        #expect(live.samples[#"worker_payload_bucket{le="100.0"}"#] == n)
        #expect(live.samples[#"worker_payload_bucket{le="50.0"}"#] == 0)
        #expect(live.samples["worker_payload_sum{}"] == n * 100)
        #expect(live.samples["worker_inflight{}"] == 2)   // livesum: one per live worker
        #expect(live.samples["worker_generation{}"] == 6)  // sum, by configuration

        let pids = workers.map { String($0.process.processIdentifier) }
        #expect(Set(dir.names().filter { $0.hasSuffix(".db") }) == Set(pids.flatMap { pid in
            ["counter_\(pid).db", "histogram_\(pid).db", "gauge_livesum_\(pid).db", "gauge_sum_\(pid).db"]
        }))

        for worker in workers {
            let end = worker.finish()
            #expect(end.status == 0, "worker failed: \(end.stderr)")
        }
        // The workers are gone: counters and histograms stay, the livesum meter goes.
        let after = collect(dir)
        #expect(after.samples[#"worker_requests_total{route="/a"}"#] == n)
        #expect(after.samples[#"worker_latency_count{route="/a"}"#] == n)
        #expect(after.samples["worker_inflight{}"] == nil)
        #expect(after.samples["worker_generation{}"] == 6)
    }

    @Test func oneNameAsTwoKindsStopsTheProcessWithAMessage() throws {
        let worker = try Worker(["clash"], multiprocessDirectory: nil)
        let end = worker.finish()
        #expect(end.signaled)
        #expect(end.stderr.contains(
            "'jobs' is used as a Meter or non-aggregating Recorder, but the Prometheus name 'jobs' is already used by a Counter or FloatingPointCounter"
        ), "stderr: \(end.stderr)")
        #expect(!end.stderr.contains("did not stop"))
    }

    @Test func invalidBucketsStopTheProcessWhenTheFactoryIsMade() throws {
        let worker = try Worker(["bad-buckets"], multiprocessDirectory: nil)
        let end = worker.finish()
        #expect(end.signaled)
        #expect(end.stderr.contains(#"invalid timerBuckets["db.query"] [0.5, 0.1]: buckets not in sorted order"#), "stderr: \(end.stderr)")
    }
}
