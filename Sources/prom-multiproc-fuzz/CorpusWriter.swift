import SystemCalls
import MmapStore

/// Writes the seed inputs made by this package's writer: real files (`MetricFile`), cut to
/// their used bytes (the zeros past `used` are never read), and a few bare keys.
enum CorpusWriter {
    static func keys() -> [SeriesKey] {
        [
            SeriesKey(family: "requests", sample: "requests_total", labels: [], help: "Requests."),
            SeriesKey(family: "requests", sample: "requests_total", labels: [Label("method", "GET"), Label("code", "200")], help: "Requests by method."),
            SeriesKey(family: "latency_seconds", sample: "latency_seconds_bucket", labels: [Label("le", "0.005")], help: "Latency."),
            SeriesKey(family: "latency_seconds", sample: "latency_seconds_bucket", labels: [Label("le", "+Inf")], help: "Latency."),
            SeriesKey(family: "latency_seconds", sample: "latency_seconds_sum", labels: [], help: "Latency."),
            SeriesKey(family: "escapes", sample: "escapes", labels: [Label("q", "a \"quoted\" \\ back\\slash"), Label("nl", "line\nbreak\ttab\r")], help: "Help with \"quotes\" and \\."),
            SeriesKey(family: "unicode", sample: "unicode", labels: [Label("city", "Zürich"), Label("emoji", "😀"), Label("cjk", "東京")], help: "Ünïcödé help ✓"),
            SeriesKey(family: "controls", sample: "controls", labels: [Label("c", "\u{0}\u{1}\u{7F}\u{8}\u{C}")], help: ""),
            SeriesKey(family: "empty_value", sample: "empty_value", labels: [Label("a", "")], help: ""),
            SeriesKey(family: "many", sample: "many", labels: (0..<12).map { Label("l\($0)", "v\($0)") }, help: "Twelve labels."),
            SeriesKey(family: "slash", sample: "slash", labels: [Label("path", "/api/v1/x")], help: "a/b"),
        ]
    }

    static func write(into corpus: String) throws {
        let work = try Sys.mkdtemp((Sys.environment("TMPDIR") ?? "/tmp") + "/pmp-corpus-XXXXXX")
        var written = 0
        func save(_ kind: FileKind, _ pid: String, _ name: String, _ fill: (MetricFile) throws -> Void) throws {
            let file = try MetricFile.claim(directory: work, kind: kind, pid: pid, reservation: 1 << 24)
            try fill(file)
            let used = file.usedBytes
            let path = file.path
            file.close()
            let bytes = try DirectoryFiles.read(path)
            try DirectoryFiles.writeAtomically(Array(bytes.prefix(used)), to: corpus + "/" + name)
            try DirectoryFiles.remove(path)
            written += 1
        }
        let all = keys()
        try save(.counter, "1", "swift-counter-empty.db") { _ in }
        try save(.counter, "2", "swift-counter-one.db") { f in try f.slot(for: all[0].encoded()).add(1) }
        try save(.counter, "3", "swift-counter-all-keys.db") { f in
            for (i, k) in all.enumerated() { try f.slot(for: k.encoded()).add(Double(i) + 0.5) }
        }
        try save(.histogram, "4", "swift-histogram.db") { f in
            for le in ["0.005", "0.01", "0.1", "1.0", "+Inf"] {
                try f.slot(for: SeriesKey(family: "h", sample: "h_bucket", labels: [Label("le", le)], help: "H.").encoded()).add(2)
            }
            try f.slot(for: SeriesKey(family: "h", sample: "h_sum", labels: [], help: "H.").encoded()).add(0.25)
            try f.slot(for: SeriesKey(family: "h", sample: "h_count", labels: [], help: "H.").encoded()).add(10)
        }
        try save(.gauge(.mostrecent), "5", "swift-gauge-mostrecent.db") { f in
            try f.slot(for: all[6].encoded()).set(-1.5, timestamp: 1_700_000_000.25)
            try f.slot(for: all[7].encoded()).set(.infinity, timestamp: 1)
            try f.slot(for: all[8].encoded()).set(.nan, timestamp: 0)
        }
        // A native-histogram file: two series, one configured at schema 3, with positive,
        // negative, zero and NaN buckets at two schemas (as after a halving).
        do {
            let store = try ProcessStore(directory: work, identity: .fixed("9"), reservation: 1 << 24)
            let first = try NativeSeriesStorage(store: store, key: all[1])
            let second = try NativeSeriesStorage(store: store, key: all[6])
            try first.withLock { () throws(SystemError) in
                first.configureLocked(schema: 3, zeroThreshold: 0x1p-128)
                let buckets: [NativeHistogramFile.Bucket] = [
                    .init(kind: .positive, schema: 4, index: -7), .init(kind: .positive, schema: 3, index: 12),
                    .init(kind: .negative, schema: 3, index: 0), .init(kind: .zero), .init(kind: .unbucketed),
                ]
                for (i, b) in buckets.enumerated() {
                    try first.countAddressLocked(b)?.storeBytes(of: UInt64(i + 1).littleEndian, as: UInt64.self)
                }
                _ = try second.countAddressLocked(.init(kind: .positive, schema: 8, index: 262_145))
            }
            store.close()
            let path = work + "/native_9.pmh"
            let bytes = try DirectoryFiles.read(path)
            let used = Int(bytes.withUnsafeBytes { $0.loadUnaligned(as: UInt32.self).littleEndian })
            try DirectoryFiles.writeAtomically(Array(bytes.prefix(used)), to: corpus + "/swift-native.pmh")
            try DirectoryFiles.remove(path)
            written += 1
        }
        do {
            // An exemplar file: a counter's and a bucket's record, one written twice (both copies).
            let store = try ProcessStore(directory: work, identity: .fixed("10"), reservation: 1 << 24)
            let all = keys()
            let counter = ExemplarSlot(store: store, key: all[1])
            let bucket = ExemplarSlot(store: store, key: all[2])
            counter.record(labels: ExemplarFile.encodeLabels([Label("trace_id", "4bf92f35")]), value: 1, timestamp: 1_700_000_000.5)
            counter.record(labels: ExemplarFile.encodeLabels([Label("trace_id", "Zürich 😀"), Label("span", "")]), value: 2, timestamp: 3)
            bucket.record(labels: ExemplarFile.encodeLabels([Label("t", "\u{0}\"")]), value: 0.004, timestamp: 2)
            store.close()
            let path = work + "/exemplars_10.pmx"
            let bytes = try DirectoryFiles.read(path)
            let used = Int(bytes.withUnsafeBytes { $0.loadUnaligned(as: UInt32.self).littleEndian })
            try DirectoryFiles.writeAtomically(Array(bytes.prefix(used)), to: corpus + "/swift-exemplars.pmx")
            try DirectoryFiles.remove(path)
            written += 1
        }
        // Past 64 KiB of used bytes: the reader's buffer growth path.
        try save(.gauge(.livesum), "6", "swift-gauge-large.db") { f in
            for i in 0..<1400 {
                try f.slot(for: SeriesKey(family: "big", sample: "big", labels: [Label("i", String(i))], help: "A file past 64 KiB.").encoded()).set(Double(i))
            }
        }
        for (i, k) in all.enumerated() {
            try DirectoryFiles.writeAtomically(k.encoded(), to: corpus + "/key-\(i).json")
            written += 1
        }
        try? Sys.rmdir(work)
        print("wrote \(written) seed files to \(corpus)")
    }
}
