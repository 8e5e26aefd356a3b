// Deployment tests, part 2: a gunicorn pool with prometheus_client in multiprocess mode, workers
// recycled by max_requests, child_exit calling `prom-multiproc-cli mark-dead`, and our `serve`
// as the metrics endpoint on the same directory (scripts/e2e/app.py, scripts/e2e/gunicorn.conf.py).
// The CLI is the one such a deployment gets: the statically linked release build that
// scripts/test.sh builds and checks (PROM_MULTIPROC_RELEASE_CLI; see `releaseCLI()`).
import Foundation
import Testing
import TestSupport

extension DeploymentTests {
    @Suite struct GunicornTests {
        static let workers = 3
        static let maxRequests = 20

        @Test(.timeLimit(.minutes(3)))
        func recycledWorkersAreCountedExactlyTheirGaugesRemovedAndTheirFilesCompacted() throws {
            let gunicorn = try ExternalTool.gunicorn.path()
            let cliPath = try releaseCLI()
            print("gunicorn deployment with \(cliPath)")
            let dir = TempDirectory("pmp-gunicorn"); defer { dir.remove() }
            let state = TempDirectory("pmp-gunicorn-state"); defer { state.remove() }
            let e2e = repositoryRoot() + "/scripts/e2e"
            // Through exec_unblocked.py: children of the test runner inherit a blocked signal
            // mask, and gunicorn's arbiter needs SIGCHLD to replace workers and run child_exit.
            let pool = try LoggedChild.start(
                try ExternalTool.python.path(),
                [e2e + "/exec_unblocked.py", gunicorn, "--config", e2e + "/gunicorn.conf.py", "--chdir", e2e, "app:application"],
                environment: [
                    "PROMETHEUS_MULTIPROC_DIR": dir.path,
                    "PROM_MULTIPROC_CLI": cliPath,
                    "E2E_STATE_DIR": state.path,
                    "E2E_WORKERS": String(Self.workers),
                    "E2E_MAX_REQUESTS": String(Self.maxRequests),
                ], log: state.file("gunicorn.log"))
            var seenWorkers = Set<Int32>()
            defer { stopPool(pool, workers: seenWorkers) }

            let listening = waitUntil(seconds: 30) {
                !pool.process.isRunning || FileManager.default.fileExists(atPath: state.file("port"))
            }
            let portText = try? String(contentsOfFile: state.file("port"), encoding: .utf8)
            let appPort = try #require(listening ? portText.flatMap { Int($0.trimmingCharacters(in: .whitespacesAndNewlines)) } : nil,
                                       "gunicorn did not start:\n\(pool.log().suffix(3000))")

            let serve = try RunningServer.start(["serve", "--dir", dir.path, "--port", "0"], cli: cliPath)
            defer { _ = stopChild(serve.process) }
            let deployment = Deployment(dir: dir, state: state, master: pool.process.processIdentifier, serve: serve)

            // Round 0 retires at least 7 workers. Round 1 sends 61 requests: the (at most 3)
            // workers alive at its end served at most 19 each, so at least one worker retires.
            var sent = 0
            var servedInAll: [Int32: Int] = [:]
            for (round, requests) in [200, 61].enumerated() {
                // Sequential requests, one connection each; every response names its worker.
                var served: [Int32: Int] = [:]
                for _ in 0..<requests {
                    let response: ClientResponse
                    do { response = try httpGet(port: appPort, "/", timeout: 15) } catch {
                        Issue.record("request \(sent + 1): \(error)\n\(pool.log().suffix(3000))")
                        throw error
                    }
                    try #require(response.status == 200, "request \(sent + 1): \(response.status) \(response.text)")
                    let pid = try #require(Int32(response.text.replacingOccurrences(of: "handled by ", with: "")
                        .trimmingCharacters(in: .whitespacesAndNewlines)), "unexpected body \(response.text)")
                    served[pid, default: 0] += 1
                    servedInAll[pid, default: 0] += 1
                    sent += 1
                }
                seenWorkers.formUnion(served.keys)
                // gunicorn (no jitter) retires a worker once it has handled max_requests; the
                // others stay. Non-retired workers served fewer than max_requests each, hence
                // the least number of retirements.
                #expect(servedInAll.values.allSatisfy { $0 <= Self.maxRequests }, "a worker outlived max_requests: \(servedInAll)")
                let retired = Set(servedInAll.filter { $0.value == Self.maxRequests }.keys)
                let retiredNow = retired.intersection(served.keys)
                let leastRetired = (requests - Self.workers * (Self.maxRequests - 1) + Self.maxRequests - 1) / Self.maxRequests
                #expect(retiredNow.count >= max(1, leastRetired), "round \(round): too few workers recycled: \(served)")

                // Wait for gunicorn to reap the retired workers, run child_exit for them and
                // boot their replacements; no worker retires after that.
                let settled = waitUntil(seconds: 30) {
                    deployment.observe(served: Set(servedInAll.keys)).settled(expecting: sent, workers: Self.workers, retired: retired)
                }
                let o = deployment.observe(served: Set(servedInAll.keys))
                #expect(settled, "the deployment did not settle; last observation: \(o)\n\(pool.log().suffix(2000))")
                #expect(retired.isSubset(of: o.dead), "retired workers still running")
                #expect(o.requests == Double(sent), "merged request count \(o.requests.map { "\($0)" } ?? "missing") != \(sent) sent")
                #expect(o.liveWorkers.count == Self.workers)
                #expect(o.liveGauge == Double(o.liveWorkers.count), "livesum over live workers only")
                #expect(o.dead.isSubset(of: o.markedDead), "child_exit did not mark-dead every retired worker")
                #expect(o.liveGaugeOwners.isDisjoint(with: o.dead), "live gauge files of dead workers remain")
                #expect(o.liveGaugeOwners == o.liveWorkers)
                #expect(o.counterOwners.count > Self.workers, "expected files of more processes than workers")
                seenWorkers.formUnion(o.counterOwners)

                // Compaction folds the dead workers' files; the merged output does not change.
                let before = dir.names().filter { $0.hasSuffix(".db") }
                let compact = try run(cliPath, ["compact", "--dir", dir.path])
                #expect(compact.status == 0, "compact: \(compact.stdout) \(compact.stderr)")
                let after = dir.names().filter { $0.hasSuffix(".db") }
                let c = deployment.observe(served: Set(servedInAll.keys))
                #expect(c.requests == Double(sent), "merged request count after compact \(c.requests.map { "\($0)" } ?? "missing") != \(sent)")
                #expect(c.liveGauge == Double(Self.workers))
                #expect(c.counterOwners.isDisjoint(with: o.dead), "files of dead workers survived compaction: \(after)")
                #expect(o.liveWorkers.isSubset(of: c.counterOwners), "compaction removed a live worker's file")
                #expect(after.count < before.count)
                print("gunicorn round \(round): \(requests) requests by \(served.count) workers; \(sent) counted; " +
                      "files \(before.count) -> \(after.count) after compact (\(compact.stdout.trimmingCharacters(in: .whitespacesAndNewlines)))")
            }

            #expect(stopPool(pool, workers: seenWorkers) == 0, "gunicorn did not stop cleanly:\n\(pool.log().suffix(2000))")
        }
    }
}

/// The gunicorn deployment's directory, supervisor and metrics endpoint, observed together.
private struct Deployment {
    let dir: TempDirectory
    let state: TempDirectory
    let master: Int32
    let serve: RunningServer

    /// One look at the directory, the pool's live workers, mark-dead's log and a scrape.
    struct Observation: CustomStringConvertible {
        var requests: Double?
        var liveGauge: Double?
        var liveWorkers: Set<Int32>
        var counterOwners: Set<Int32>
        var liveGaugeOwners: Set<Int32>
        var markedDead: Set<Int32>
        /// Processes that wrote a file (or served a request) and are no longer workers.
        var dead: Set<Int32>

        func settled(expecting requests: Int, workers: Int, retired: Set<Int32>) -> Bool {
            self.requests == Double(requests) && liveWorkers.count == workers && liveGauge == Double(workers)
                && liveWorkers.isDisjoint(with: retired) && retired.isSubset(of: markedDead)
                && dead.isSubset(of: markedDead) && liveGaugeOwners == liveWorkers
        }

        var description: String {
            "requests=\(requests.map { "\($0)" } ?? "nil") liveGauge=\(liveGauge.map { "\($0)" } ?? "nil") " +
                "live=\(liveWorkers.sorted()) counterFiles=\(counterOwners.sorted()) liveGaugeFiles=\(liveGaugeOwners.sorted()) " +
                "markedDead=\(markedDead.sorted()) dead=\(dead.sorted())"
        }
    }

    /// `served`: the workers that answered requests (their files may be compacted away).
    func observe(served: Set<Int32> = []) -> Observation {
        let names = dir.names()
        func owners(_ prefix: String) -> Set<Int32> {
            Set(names.compactMap { name -> Int32? in
                guard name.hasPrefix(prefix), name.hasSuffix(".db") else { return nil }
                return Int32(name.dropFirst(prefix.count).dropLast(3))
            })
        }
        let live = childProcesses(of: master)
        let counters = owners("counter_")
        let marked = Set(((try? String(contentsOfFile: state.file("mark-dead.log"), encoding: .utf8)) ?? "")
            .split(separator: "\n").compactMap { line -> Int32? in
                guard line.hasPrefix("pid="), line.contains(" status=0 ") else { return nil }
                return Int32(line.dropFirst(4).prefix { $0.isNumber })
            })
        let scrape = try? serve.get()
        let text = scrape?.status == 200 ? scrape?.text ?? "" : ""
        return Observation(
            requests: sampleValue(text, "e2e_app_requests_total"), liveGauge: sampleValue(text, "e2e_app_workers"),
            liveWorkers: live, counterOwners: counters, liveGaugeOwners: owners("gauge_livesum_"), markedDead: marked,
            dead: counters.union(owners("gauge_livesum_")).union(served).subtracting(live))
    }
}

/// The running (not zombie) processes whose parent is `parent`, from /proc.
func childProcesses(of parent: Int32) -> Set<Int32> {
    let entries = (try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? []
    return Set(entries.compactMap { entry -> Int32? in
        guard let pid = Int32(entry),
              let stat = try? String(contentsOfFile: "/proc/\(entry)/stat", encoding: .utf8),
              let close = stat.lastIndex(of: ")") else { return nil }
        // After "pid (comm)": state, then the parent's pid.
        let fields = stat[stat.index(after: close)...].split(separator: " ")
        guard fields.count > 1, Int32(fields[1]) == parent, fields[0] != "Z", fields[0] != "X" else { return nil }
        return pid
    })
}

/// Stops the gunicorn master (SIGTERM, then SIGKILL) and then any of its workers that outlived
/// it, so no process of the test is left behind even when the master had to be killed.
@discardableResult
private func stopPool(_ pool: LoggedChild, workers: Set<Int32>) -> Int32 {
    let orphans = childProcesses(of: pool.process.processIdentifier)
    let status = pool.stop(grace: 15)
    for pid in workers.union(orphans) {
        let cmdline = (try? String(contentsOfFile: "/proc/\(pid)/cmdline", encoding: .utf8)) ?? ""
        if cmdline.contains("gunicorn") { kill(pid, SIGKILL) }
    }
    return status
}
