// The metadata files (`meta_<pid>.pmm`) in the merge, written through the store directly so
// that a test can play several processes and write damaged entries.
import MmapStore
import MultiprocessCollector
import PromMetrics
import Testing
import TestSupport

@Suite struct MetadataMergeTests {
    /// Writes `jobs_total` (+1) and, for each given time, a creation time of the series.
    private func process(_ dir: TempDirectory, _ id: String, created: Double, extraKey: [UInt8]? = nil) throws {
        let store = try ProcessStore(directory: dir.path, identity: .fixed(id))
        defer { store.close() }
        try store.series(kind: .counter, key: SeriesKey(family: "jobs", sample: "jobs_total", labels: [], help: "Jobs.")).add(1)
        try store.metadataHandle(key: MetadataFile.createdKey(family: "jobs", labels: [])).set(created)
        if let extraKey { try store.metadataHandle(key: extraKey).set(0) }
    }

    private func created(_ dir: TempDirectory) -> (value: Double?, problems: [String]) {
        let result = MultiProcessCollector(directory: dir.path, includeSelfMetrics: false)
            .collect(including: [], alongside: { _ in [] }, createdSeries: true)
        let value = result.families.first { $0.name == "jobs" }?.samples.first { $0.name == "jobs_created" }?.value
        return (value, result.problems.map { MetricFileName.baseName(of: $0.path) })
    }

    @Test func theEarliestTimeAcrossFilesWins() throws {
        let dir = TempDirectory(); defer { dir.remove() }
        try process(dir, "1", created: 300)
        try process(dir, "2", created: 100)
        try process(dir, "3", created: 200)
        #expect(created(dir).value == 100)
        #expect(created(dir).problems.isEmpty)
    }

    /// A metadata file with a bad entry after a good one gives nothing: its earlier times are
    /// rolled back, the file is reported, the other files' times still count.
    @Test(arguments: [[UInt8(ascii: "c"), 0, UInt8(ascii: "x")], [UInt8(ascii: "t"), 0, UInt8(ascii: "x")], [0x41]])
    func aBadMetadataFileIsReportedAndContributesNothing(badKey: [UInt8]) throws {
        let dir = TempDirectory(); defer { dir.remove() }
        try process(dir, "1", created: 300)
        try process(dir, "2", created: 100, extraKey: badKey)
        let (value, problems) = created(dir)
        #expect(value == 300)
        #expect(problems == ["meta_2.pmm"])
    }
}
