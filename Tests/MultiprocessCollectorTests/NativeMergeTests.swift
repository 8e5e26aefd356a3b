import Foundation
import MmapStore
import MultiprocessCollector
import PromMetrics
import Synchronization
import SystemCalls
import Testing
import TestSupport

/// Native histograms in multiprocess mode, one test process playing several pids: the
/// `native_<pid>.pmh` files, and their merge by the collector.
@Suite struct NativeMergeTests {
    /// A multiple of 1/64: sums of these are exact in any order, so merged and reference sums
    /// compare equal.
    static func dyadic(_ rng: inout some RandomNumberGenerator, _ range: ClosedRange<Int> = -64_000...64_000) -> Double {
        Double(Int.random(in: range, using: &rng)) / 64
    }

    /// A registry writing into `dir` as process `pid`.
    func multiprocessRegistry(_ dir: TempDirectory, pid: String) throws -> Registry {
        Registry(storage: try .multiprocess(directory: dir.path, identity: .fixed(pid)))
    }

    func collect(_ dir: TempDirectory) -> CollectResult {
        MultiProcessCollector(directory: dir.path, includeSelfMetrics: false, reporter: ProblemReporter { _ in }).collect()
    }

    /// The native series one process observing `values` with `options` reports.
    func reference(_ values: [Double], _ options: NativeHistogramOptions, labels: [String] = []) throws -> NativeHistogramSnapshot {
        let r = Registry()
        let h = try Histogram("h", help: "H.", labelNames: labels.isEmpty ? [] : ["route"], native: options, registry: r)
        for v in values { if labels.isEmpty { h.observe(v) } else { h.labels(labels[0]).observe(v) } }
        return try #require(r.collect().first?.nativeHistograms.first)
    }

    /// Three processes at schemas 8, 3 and 0 with zero thresholds 2^-128, 2^-10 and 1/4 (all
    /// bucket boundaries at schema 0): the merge is exactly one histogram at schema 0 with
    /// zero threshold 1/4 observing every value, sum included.
    @Test func processesAtDifferentSchemasAndZeroThresholdsMergeIntoOneAtTheCoarsest() throws {
        let dir = TempDirectory("pmp-native-merge"); defer { dir.remove() }
        let settings: [(String, NativeHistogramOptions)] = [
            ("1", NativeHistogramOptions(bucketFactor: 1.001, maxBucketNumber: 0)),
            ("2", NativeHistogramOptions(bucketFactor: 1.1, zeroThreshold: 0x1p-10, maxBucketNumber: 0)),
            ("3", NativeHistogramOptions(bucketFactor: 2, zeroThreshold: 0.25, maxBucketNumber: 0)),
        ]
        var rng = SystemRandomNumberGenerator()
        var all: [Double] = []
        var registries: [Registry] = []
        for (pid, options) in settings {
            let r = try multiprocessRegistry(dir, pid: pid)
            registries.append(r)
            let h = try Histogram("h", help: "H.", labelNames: ["route"], buckets: [0.5, 10], native: options, registry: r)
            for _ in 0..<2_000 {
                let v = Self.dyadic(&rng)
                h.labels("/a").observe(v)
                all.append(v)
            }
            h.labels("/a").observe(0)
            all.append(0)
        }
        #expect(dir.names().filter { $0.hasSuffix(".pmh") } == ["native_1.pmh", "native_2.pmh", "native_3.pmh"])
        let result = collect(dir)
        #expect(result.problems.isEmpty)
        let family = try #require(result.family("h"))
        #expect(family.nativeHistograms.count == 1)
        let merged = try #require(family.nativeHistograms.first)
        let expected = try reference(all, NativeHistogramOptions(bucketFactor: 2, zeroThreshold: 0.25, maxBucketNumber: 0), labels: ["/a"])
        #expect(merged == expected)
        #expect(merged.schema == 0 && merged.zeroThreshold == 0.25 && merged.count == Double(all.count))
        // The classic part is merged as always, from the .db files: its count is the same.
        #expect(family.value("h_count", ["route": "/a"]) == Double(all.count))
        #expect(family.value("h_sum", ["route": "/a"]) == merged.sum)
        withExtendedLifetime(registries) {}
    }

    /// A process whose series halved its resolution (too many buckets) has buckets at two
    /// schemas in its file: the merge brings them, and everyone else's, to the lowest.
    @Test func aProcessThatHalvedItsResolutionLowersTheMerge() throws {
        let dir = TempDirectory("pmp-native-halved"); defer { dir.remove() }
        let limited = try multiprocessRegistry(dir, pid: "10")
        let fine = try multiprocessRegistry(dir, pid: "11")
        let a = try Histogram("h", help: "H.", native: NativeHistogramOptions(bucketFactor: 1.01, maxBucketNumber: 5), registry: limited)
        let b = try Histogram("h", help: "H.", native: NativeHistogramOptions(bucketFactor: 1.01, maxBucketNumber: 0), registry: fine)
        var rng = SystemRandomNumberGenerator()
        var all: [Double] = []
        for i in 0..<3_000 {
            let v = Self.dyadic(&rng, 1...64_000)
            (i % 2 == 0 ? a : b).observe(v)
            all.append(v)
        }
        let own = try #require(a.collect().first?.nativeHistograms.first)
        #expect(own.schema < 7)
        let merged = try #require(collect(dir).family("h")?.nativeHistograms.first)
        #expect(merged.schema == own.schema)
        let bucketFactor = pow(2, pow(2, -Double(own.schema)))
        #expect(merged == (try reference(all, NativeHistogramOptions(bucketFactor: bucketFactor, maxBucketNumber: 0))))
    }

    /// A series with no observation yet (created at zero, as prometheus_client creates every
    /// child) is exported empty, and does not lower another process's resolution.
    @Test func anEmptySeriesDoesNotLowerTheResolution() throws {
        let dir = TempDirectory("pmp-native-empty"); defer { dir.remove() }
        let r1 = try multiprocessRegistry(dir, pid: "1"), r2 = try multiprocessRegistry(dir, pid: "2")
        let coarse = try Histogram("h", help: "H.", labelNames: ["k"], native: NativeHistogramOptions(bucketFactor: 2), registry: r1)
        let fine = try Histogram("h", help: "H.", labelNames: ["k"], native: NativeHistogramOptions(bucketFactor: 1.1), registry: r2)
        _ = coarse.labels("x")
        _ = coarse.labels("y")
        fine.labels("x").observe(3)
        let natives = try #require(collect(dir).family("h")?.nativeHistograms)
        #expect(natives.map(\.labels) == [[Label("k", "x")], [Label("k", "y")]])
        #expect(natives[0].schema == 3 && natives[0].count == 1 && natives[0].sum == 3)
        #expect(natives[1].schema == 0 && natives[1].count == 0 && natives[1].positiveBuckets.isEmpty)
    }

    /// The files of dead processes still count (as counters do).
    @Test func deadProcessesFilesStillCount() throws {
        let dir = TempDirectory("pmp-native-dead"); defer { dir.remove() }
        let storage = try MetricStorage.multiprocess(directory: dir.path, identity: .fixed("7"))
        let h = try Histogram("h", help: "H.", native: NativeHistogramOptions(), registry: Registry(storage: storage))
        h.observe(1.5); h.observe(3)
        storage.store?.close()
        // A child another test spawns at this moment holds a copy of the lock's file
        // description until it execs (then close-on-exec drops it): probe for at most 10 s.
        let deadline = Sys.monotonicNanoseconds() + 10_000_000_000
        var liveness = try Liveness.probe(path: dir.file("native_7.pmh"))
        while liveness != .dead && Sys.monotonicNanoseconds() < deadline {
            usleep(10_000)
            liveness = try Liveness.probe(path: dir.file("native_7.pmh"))
        }
        #expect(liveness == .dead)
        // After the store is closed, observations count in the process's memory only (as
        // closed stores' series do): the unmapped file is never touched.
        let bytes = try Data(contentsOf: URL(fileURLWithPath: dir.file("native_7.pmh")))
        h.observe(1.5); h.observe(100)
        #expect(try Data(contentsOf: URL(fileURLWithPath: dir.file("native_7.pmh"))) == bytes)
        #expect(h.collect().first?.nativeHistograms.first?.count == 2)
        let merged = try #require(collect(dir).family("h")?.nativeHistograms.first)
        #expect(merged.count == 2 && merged.sum == 4.5)
    }

    /// After the process identity changes (as in a fork child), new observations go to the
    /// new process's file, whose buckets start at zero; the parent's file is not written to.
    @Test func aNewProcessWritesItsOwnFile() throws {
        let dir = TempDirectory("pmp-native-fork"); defer { dir.remove() }
        final class Pid: Sendable { let value = Locked("100") }
        let pid = Pid()
        let storage = try MetricStorage.multiprocess(directory: dir.path, identity: ProcessIdentity { pid.value.withLock { $0 } })
        let h = try Histogram("h", help: "H.", native: NativeHistogramOptions(bucketFactor: 2), registry: Registry(storage: storage))
        h.observe(1.5); h.observe(1.5); h.observe(-3); h.observe(0)
        let parentBytes = try Data(contentsOf: URL(fileURLWithPath: dir.file("native_100.pmh")))
        pid.value.withLock { $0 = "200" }
        storage.store?.processIdentityMayHaveChanged()
        h.observe(1.5); h.observe(6)
        #expect(try Data(contentsOf: URL(fileURLWithPath: dir.file("native_100.pmh"))) == parentBytes)
        let child = try #require(h.collect().first?.nativeHistograms.first)
        #expect(child.count == 2 && child.positiveBuckets == [.init(index: 1, count: 1), .init(index: 3, count: 1)])
        let merged = try #require(collect(dir).family("h")?.nativeHistograms.first)
        #expect(merged.count == 6 && merged.zeroCount == 1)
        #expect(merged.positiveBuckets == [.init(index: 1, count: 3), .init(index: 3, count: 1)])
        #expect(merged.negativeBuckets == [.init(index: 2, count: 1)])
        storage.store?.close()
    }

    /// The format, byte by byte, for one series with one observation of 1.5 at schema 0:
    /// the series entry (JSON key, configuration "schema 0, set", zero threshold), then the
    /// positive bucket 1 referring to the series entry's value offset, with count 1.
    @Test func theFileHoldsTheDocumentedBytes() throws {
        let dir = TempDirectory("pmp-native-bytes"); defer { dir.remove() }
        let storage = try MetricStorage.multiprocess(directory: dir.path, identity: .fixed("5"))
        defer { storage.store?.close() }
        let h = try Histogram("h", help: "H.", native: NativeHistogramOptions(bucketFactor: 2), registry: Registry(storage: storage))
        h.observe(1.5)
        let bytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: dir.file("native_5.pmh"))))
        let key = Array(#"["h", "h", {}, "H."]"#.utf8)  // 20 bytes: padding 8 - 24 % 8 = 8
        var expected: [UInt8] = []
        func le<T: FixedWidthInteger>(_ v: T) { withUnsafeBytes(of: v.littleEndian) { expected += $0 } }
        let seriesEntry = 4 + key.count + 8 + 16
        le(UInt32(8 + seriesEntry + 32)); expected += [0x50, 0x4D, 0x50, 1]  // used, "PMP", version 1
        le(UInt32(key.count)); expected += key; expected += [UInt8](repeating: 0x20, count: 8)
        le(UInt64(0x0100)); le((0x1p-128 as Double).bitPattern)  // schema 0, set; threshold 2^-128
        let valueOffset = 8 + 4 + key.count + 8
        le(UInt32(11)); expected += [0x70, 0, 0]; le(UInt32(valueOffset)); le(Int32(1)); expected += [0x20]
        le(UInt64(1)); le(UInt64(0))
        #expect(Array(bytes.prefix(expected.count)) == expected)
        #expect(bytes.count == 65536 && bytes[expected.count...].allSatisfy { $0 == 0 })
    }

    /// Bad native files are skipped and reported, like bad `*.db` files; the rest merges.
    @Test func badNativeFilesAreSkippedAndReported() throws {
        let dir = TempDirectory("pmp-native-bad"); defer { dir.remove() }
        let r = try multiprocessRegistry(dir, pid: "1")
        let h = try Histogram("h", help: "H.", native: NativeHistogramOptions(bucketFactor: 2), registry: r)
        h.observe(1.5)
        let series = SeriesKey(family: "h", sample: "h", labels: [], help: "H.").encoded()
        let seriesValue = UInt32(8 + FileFormat.entrySize(keyLength: series.count) - 16)
        func bucket(_ kind: UInt8, schema: Int8 = 0, series: UInt32 = seriesValue, index: Int32 = 1) -> [UInt8] {
            var k: [UInt8] = [kind, UInt8(bitPattern: schema), 0]
            withUnsafeBytes(of: series.littleEndian) { k += $0 }
            withUnsafeBytes(of: index.littleEndian) { k += $0 }
            return k
        }
        let configured = Double(bitPattern: 0x0100)
        let cases: [(String, [UInt8])] = [
            ("native_2.pmh", []),
            ("native_3.pmh", MetricFileBuilder.bytes(entries: [(bucket(0x70), Double(bitPattern: 1), 0)])),
            ("native_4.pmh", MetricFileBuilder.bytes(entries: [(series, configured, 0), (bucket(0x78), Double(bitPattern: 1), 0)])),
            ("native_5.pmh", MetricFileBuilder.bytes(entries: [(series, configured, 0), (bucket(0x70, schema: 9), Double(bitPattern: 1), 0)])),
            ("native_6.pmh", MetricFileBuilder.bytes(entries: [(series, Double(bitPattern: 0x0109), 0)])),
            ("native_7.pmh", MetricFileBuilder.bytes(entries: [(Array("[garbage".utf8), 0, 0)])),
            ("native_8.pmh", MetricFileBuilder.bytes(entries: [(series, configured, 0), (bucket(0x70, index: 5_000), Double(bitPattern: 1), 0)])),
            ("native_9.pmh", Array(MetricFileBuilder.bytes(entries: [(series, configured, 0)]).prefix(20))),
            ("native_x_y.pmh", MetricFileBuilder.bytes(entries: [])),
        ]
        for (name, bytes) in cases { try Data(bytes).write(to: URL(fileURLWithPath: dir.file(name))) }
        let result = collect(dir)
        #expect(Set(result.problems.map { MetricFileName.baseName(of: $0.path) }) == Set(cases.map(\.0)), "\(result.problems)")
        let merged = try #require(result.family("h")?.nativeHistograms.first)
        #expect(merged.count == 1 && merged.positiveBuckets == [.init(index: 1, count: 1)])
    }
}
