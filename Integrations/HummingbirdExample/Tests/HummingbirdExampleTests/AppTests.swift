// The app on its own: one worker without a multiprocess directory serving its own /metrics,
// workers that stop when their supervisor is killed, and the MetricsHandler route of the
// core's documentation, which is the app's.
import Foundation
import Testing
#if canImport(Glibc)
import Glibc
#endif

extension HummingbirdDeploymentTests {
    @Suite struct AppTests {
        /// A single-process deployment: no PROMETHEUS_MULTIPROC_DIR, no sidecar; the worker's
        /// /metrics route serves what its MetricsMiddleware counted, from memory.
        @Test(.timeLimit(.minutes(1)))
        func aWorkerWithoutADirectoryServesItsOwnMetrics() throws {
            let work = TemporaryDirectory("pmp-hb-single"); defer { work.remove() }
            let app = productsDirectory() + "/hummingbird-example"
            var worker: Child? = nil
            var port = 0
            for attempt in 1...3 where worker == nil {
                port = try freePort()
                let child = try Child.start(app, ["worker", "--host", "127.0.0.1", "--port", String(port)],
                                            lifetime: 120, log: work.file("worker-\(attempt).log"))
                if waitUntil(seconds: 20, { !child.process.isRunning || (try? get(port: port, "/users/0").status) == 200 }),
                   child.process.isRunning {
                    worker = child
                } else {
                    child.stop()
                }
            }
            let running = try #require(worker, "the worker did not start")
            defer { running.stop() }
            for id in 1...5 { #expect(try get(port: port, "/users/\(id)").status == 200) }

            let response = try get(port: port, "/metrics")
            #expect(response.status == 200)
            let all = samples(response.body)
            // The readiness request answered 200 too: 1 + 5.
            #expect(sum(all, "hb_requests_total", ["http_route": "/users/{id}", "http_response_status_code": "200"]) == 6,
                    "\(response.body)")
            // Without a directory the process metrics describe this process, with no pid label.
            let memory = all.filter { $0.name == "process_resident_memory_bytes" }
            #expect(memory.count == 1 && memory.first?.labels.isEmpty == true && (memory.first?.value ?? 0) > 0)
            #expect(running.stop() == 0, "a worker stops gracefully on SIGTERM:\n\(running.log())")
        }

        /// A supervisor killed with SIGKILL cannot stop its workers; they notice that their
        /// parent changed and stop by themselves, freeing their ports.
        @Test(.timeLimit(.minutes(1)))
        func workersStopWhenTheirSupervisorIsKilled() throws {
            let work = TemporaryDirectory("pmp-hb-orphans"); defer { work.remove() }
            let directory = work.file("metrics")
            try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: false)
            let pool = try WorkerPool.start(productsDirectory() + "/hummingbird-example", directory: directory,
                                            workers: 2, logs: work, probes: Probes())
            defer { pool.supervisor.stop() }
            let workers = pool.ports.compactMap { pool.pid(on: $0) }
            try #require(workers.count == 2)
            let supervisor = try #require(pool.supervisor.programPID)
            #expect(workers.allSatisfy { processStat($0)?.parent == supervisor })

            #expect(kill(supervisor, SIGKILL) == 0)
            let stopped = waitUntil(seconds: 10) { workers.allSatisfy(hasExited) && pool.ports.allSatisfy(portIsFree) }
            #expect(stopped, """
                workers \(workers.filter { !hasExited($0) }) outlived their supervisor; ports in use: \
                \(pool.ports.filter { !portIsFree($0) }):
                \(pool.supervisor.log().suffix(2000))
                """)
            pool.supervisor.stop()
        }
    }
}

/// Every Swift example in the core's documentation comments that mounts a route
/// (`router.`, which the core's ExamplesTests leaves to the integration packages) is code of
/// this app, between `// example: NAME` and `// end example` in App.swift.
@Suite struct DocumentationExampleTests {
    @Test func theHummingbirdRoutesOfTheCoreDocumentationAreTheAppsCode() throws {
        let app = try String(contentsOfFile: repositoryRoot + "/Integrations/HummingbirdExample/Sources/hummingbird-example/App.swift",
                             encoding: .utf8)
        let regions = exampleRegions(app)
        #expect(!regions.isEmpty, "App.swift has no `// example:` region")
        var routeExamples = 0
        let sources = repositoryRoot + "/Sources"
        for case let relative as String in FileManager.default.enumerator(atPath: sources)! where relative.hasSuffix(".swift") {
            let text = try String(contentsOfFile: sources + "/" + relative, encoding: .utf8)
            for block in docCommentBlocks(text) where block.contains(where: { $0.contains("router.") }) {
                routeExamples += 1
                let found = regions.contains { region in
                    region.count >= block.count
                        && (0...(region.count - block.count)).contains { Array(region[$0..<($0 + block.count)]) == block }
                }
                #expect(found, "the example in Sources/\(relative) is not App.swift's code:\n\(block.joined(separator: "\n"))")
            }
        }
        #expect(routeExamples >= 1, "no documentation comment under Sources/ shows a Hummingbird route")
    }

    /// The lines of a snippet as the core's ExamplesTests compares them: trailing spaces and
    /// common indentation removed, import lines and blank lines dropped.
    private func normalized(_ lines: [Substring]) -> [String] {
        let kept = lines.map { String($0).replacingOccurrences(of: "\\s+$", with: "", options: .regularExpression) }
            .filter { !$0.isEmpty && !$0.hasPrefix("import ") }
        let indent = kept.map { $0.prefix { $0 == " " }.count }.min() ?? 0
        return kept.map { String($0.dropFirst(indent)) }
    }

    /// The ```swift blocks of the documentation comments of a Swift file.
    private func docCommentBlocks(_ source: String) -> [[String]] {
        var blocks: [[String]] = [], current: [Substring]?
        for line in source.split(separator: "\n", omittingEmptySubsequences: false) {
            let t = line.drop { $0 == " " }
            let doc = t.hasPrefix("///") ? t.dropFirst(3).dropFirst(t.dropFirst(3).hasPrefix(" ") ? 1 : 0) : ""
            let trimmed = doc.trimmingCharacters(in: .whitespaces)
            if current == nil, trimmed == "```swift" { current = [] } else if current != nil, trimmed == "```" {
                blocks.append(normalized(current ?? [])); current = nil
            } else { current?.append(doc) }
        }
        return blocks
    }

    /// The `// example: NAME` … `// end example` regions of a source file.
    private func exampleRegions(_ source: String) -> [[String]] {
        var regions: [[String]] = [], current: [Substring]?
        for line in source.split(separator: "\n", omittingEmptySubsequences: false) {
            let t = line.trimmingCharacters(in: .whitespaces)
            if t.hasPrefix("// example: ") { current = [] } else if t == "// end example", let lines = current {
                regions.append(normalized(lines)); current = nil
            } else { current?.append(line) }
        }
        return regions
    }
}
