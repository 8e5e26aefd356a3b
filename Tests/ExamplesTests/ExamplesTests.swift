// The documentation's Swift examples are the code in Examples.swift: this suite checks that
// every ```swift block of README.md, the DocC articles and the documentation comments under
// Sources/ appears there, and runs the examples that need no fixed path or global state.
import Foundation
import MultiprocessCollector
import PromExposition
import PromMetrics
import Testing
import TestSupport

@Suite("Documentation examples")
struct ExamplesTests {
    static let root = repositoryRoot()

    /// The lines of a snippet: trailing spaces and common indentation removed, import lines and
    /// blank lines dropped.
    static func normalized(_ lines: [Substring]) -> [String] {
        let kept = lines.map { String($0).replacingOccurrences(of: "\\s+$", with: "", options: .regularExpression) }
            .filter { !$0.isEmpty && !$0.hasPrefix("import ") }
        let indent = kept.map { $0.prefix { $0 == " " }.count }.min() ?? 0
        return kept.map { String($0.dropFirst(indent)) }
    }

    /// The modules of this package: a block that imports any other module is an example of an
    /// integration package (swift-metrics, Hummingbird), compiled there, not here.
    static let coreModules: Set<String> = [
        "PromMetrics", "MultiprocessCollector", "PromExposition", "PromHTTP", "MmapStore", "SystemCalls", "Foundation",
    ]

    /// The ```swift blocks of a Markdown text that use this package only.
    static func markdownBlocks(_ text: String) -> [[String]] {
        var blocks: [[String]] = [], current: [Substring]?
        for line in text.split(separator: "\n", omittingEmptySubsequences: false) {
            let trimmed = line.trimmingCharacters(in: .whitespaces)
            if current == nil, trimmed == "```swift" { current = [] } else if current != nil, trimmed == "```" {
                let lines = current ?? []
                let foreign = lines.contains { line in
                    let t = line.trimmingCharacters(in: .whitespaces)
                    return t.hasPrefix("import ") && !coreModules.contains(String(t.dropFirst("import ".count)))
                }
                if !foreign { blocks.append(normalized(lines)) }
                current = nil
            } else { current?.append(line) }
        }
        return blocks
    }

    /// The ```swift blocks of the documentation comments of a Swift file.
    static func docCommentBlocks(_ source: String) -> [[String]] {
        let docLines = source.split(separator: "\n", omittingEmptySubsequences: false).map { line -> String in
            let t = line.drop { $0 == " " }
            guard t.hasPrefix("///") else { return "" }
            return String(t.dropFirst(3).dropFirst(t.dropFirst(3).hasPrefix(" ") ? 1 : 0))
        }
        return markdownBlocks(docLines.joined(separator: "\n"))
    }

    /// The regions of Examples.swift, by name.
    static func exampleRegions() throws -> [String: [String]] {
        let text = try String(contentsOfFile: root + "/Tests/ExamplesTests/Examples.swift", encoding: .utf8)
        var regions: [String: [String]] = [:], name: String?, current: [Substring] = []
        for line in text.split(separator: "\n", omittingEmptySubsequences: false) {
            let t = line.trimmingCharacters(in: .whitespaces)
            if t.hasPrefix("// example: ") { name = String(t.dropFirst("// example: ".count)); current = [] } else if t == "// end example", let n = name {
                regions[n] = normalized(current); name = nil
            } else if name != nil { current.append(line) }
        }
        return regions
    }

    /// Every documentation file with Swift examples: README.md, DocC articles, Swift sources.
    static func documentedBlocks() throws -> [(file: String, block: [String])] {
        var out: [(String, [String])] = []
        let fm = FileManager.default
        let readme = try String(contentsOfFile: root + "/README.md", encoding: .utf8)
        out += markdownBlocks(readme).map { ("README.md", $0) }
        guard let walker = fm.enumerator(atPath: root + "/Sources") else { return out }
        for case let relative as String in walker {
            let path = root + "/Sources/" + relative
            if relative.hasSuffix(".md") {
                out += markdownBlocks(try String(contentsOfFile: path, encoding: .utf8)).map { ("Sources/" + relative, $0) }
            } else if relative.hasSuffix(".swift") {
                out += docCommentBlocks(try String(contentsOfFile: path, encoding: .utf8)).map { ("Sources/" + relative, $0) }
            }
        }
        return out
    }

    @Test func everySwiftBlockOfTheDocumentationIsCompiledHere() throws {
        let regions = Array(try Self.exampleRegions().values)
        let blocks = try Self.documentedBlocks()
        #expect(blocks.count >= 15, "expected the README's, the articles' and the doc comments' examples")
        for (file, block) in blocks where !block.isEmpty {
            // Examples for other packages' APIs (a Hummingbird route) are compiled by the
            // integration packages, not here.
            if block.contains(where: { $0.contains("router.") }) { continue }
            let found = regions.contains { region in
                region.count >= block.count && (0...(region.count - block.count)).contains { Array(region[$0..<($0 + block.count)]) == block }
            }
            #expect(found, "an example in \(file) is not in Tests/ExamplesTests/Examples.swift:\n\(block.joined(separator: "\n"))")
        }
    }

    @Test func theExemplarExampleKeepsItsExemplar() throws {
        let served = try Examples.exemplarDoc()
        #expect(served.value == 1)
        #expect(served.exemplar?.labels == [Label("trace_id", "4bf92f3577b34da6")])
        #expect(served.exemplar?.value == 1)
    }

    @Test func theRegistryAndMergingExamplesRunAndAgree() throws {
        let dir = TempDirectory()
        defer { dir.remove() }
        let registry = try Examples.registryDoc(dir: dir.path)
        // The other examples reuse the registry example's names: each gets its own process.
        _ = try Examples.doccOverview(registry: Registry(storage: .multiprocess(directory: dir.path, identity: .fixed("456"))))
        try Examples.metricDocs(registry: Registry(storage: .multiprocess(directory: dir.path, identity: .fixed("789"))))
        withExtendedLifetime(registry) {}
        let text = Examples.readmeMerging(directory: dir.path)
        // What the examples recorded, read back through the README's merge.
        #expect(text.contains("http_requests_total{method=\"GET\"} 1.0\n"))
        #expect(text.contains("http_requests_total{route=\"/api\",status=\"200\"} 1.0\n"))
        #expect(text.contains("worker_phase{worker_phase=\"serving\"} 1.0\n"))
        #expect(text.contains("request_duration_seconds_count{route=\"/api\"} 1.0\n"))
    }

    @Test func theStorageReporterExampleHearsItsStoragesProblems() throws {
        let dir = TempDirectory()
        defer { dir.remove() }
        final class Heard: @unchecked Sendable {
            private let lock = NSLock()
            private var codes: [String] = []
            func add(_ code: String) { lock.lock(); codes.append(code); lock.unlock() }
            var all: [String] { lock.lock(); defer { lock.unlock() }; return codes }
        }
        let heard = Heard()
        let registry = try Examples.problemReporterStorageDoc(dir: dir.path) { problem in heard.add(problem.code) }
        let jobs = try Counter("jobs_total", help: "Jobs.", labelNames: ["queue"], registry: registry)
        jobs.labels("a").increment()
        jobs.clear()
        #expect(heard.all == ["no_effect_in_multiprocess_mode"])
    }

    @Test func theFunctionGaugeExampleExportsWhatItsFunctionReturns() throws {
        let registry = Registry()
        let queued = try Examples.functionGaugeDoc(serverRegistry: registry)
        #expect(queued.value == 3)
        #expect(registry.collect().first?.samples == [Sample(name: "jobs_queued", value: 3)])
    }

    @Test func theNegotiationExamplePrintsWhatItsCommentsSay() {
        #expect(Examples.negotiationDoc() == [
            "openMetrics", "application/openmetrics-text; version=1.0.0; charset=utf-8; escaping=underscores",
        ])
        Examples.goFloatDoc()
        let body = Examples.renderDoc(families: [], request: Context.Request(accept: nil))
        #expect(body.isEmpty)
        #expect(Examples.configurationDoc().port == 9100)
    }

    /// The native histogram example's buckets hold what its comment says: 1.5 in (1, 2], 3.0 in
    /// (2, 4], -2.5 in [-4, -2), 0.0 in the zero bucket.
    @Test func theNativeHistogramExampleBucketsItsObservations() throws {
        let family = Examples.nativeHistogramDoc()
        let native = try #require(family.nativeHistograms.first)
        func index(_ value: Double) -> Int32 { Int32((log2(abs(value))).rounded(.up)) }
        #expect(native.positiveBuckets.map(\.index) == [index(1.5), index(3.0)])
        #expect(native.negativeBuckets.map(\.index) == [index(-2.5)])
        #expect(native.zeroCount == 1 && native.count == 4 && native.sum == 0.0 + 1.5 + 3.0 - 2.5)
        let text = String(decoding: Exposition.render([family], format: .prometheusText), as: UTF8.self)
        #expect(text.contains("latency_seconds_count{route=\"/api\"} 4.0\n"))
    }
}
