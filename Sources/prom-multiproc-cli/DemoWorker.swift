import Foundation
import PromMetrics

/// `demo-worker --dir DIR`: one worker of the demo, writing realistic metrics until killed.
enum DemoWorkerCommand {
    static let spec = OptionSpec(valued: [("dir", "the multiprocess directory"), ("rate", "simulated requests per second (default 200)")])

    static let help = helpText(
        command: "demo-worker", synopsis: "--dir DIR [--rate N]",
        about: "A worker process of `demo`: simulates HTTP requests and records them until it is stopped.",
        spec: spec, exitCodes: "  0 stopped\n  1 the directory cannot be used\n  2 usage error")

    static func run(_ args: Arguments) throws -> ExitCode {
        let dir = try args.directory()
        let rate = try args.integer("rate", default: 200, range: 1...100_000)
        let registry = Registry(storage: try .multiprocess(directory: dir))
        let requests = try Counter("demo_http_requests_total", help: "HTTP requests served, by route and status.",
                                   labelNames: ["route", "status"], registry: registry)
        let latency = try Histogram("demo_http_request_duration_seconds", help: "HTTP request latency.",
                                    labelNames: ["route"], registry: registry)
        let inProgress = try Gauge("demo_http_requests_in_progress", help: "HTTP requests in progress.",
                                   mode: .livesum, registry: registry)
        let started = try Gauge("demo_worker_start_time_seconds", help: "When each worker started.", mode: .all, registry: registry)
        let build = try Info("demo_build", help: "Build information.", registry: registry)
        build.info(["version": "1.0.0", "language": "swift"])
        started.setToCurrentTime()

        let routes = ["/", "/api/users", "/api/orders", "/health"]
        // Children are looked up once and kept: the hot path is then one atomic add.
        let ok = routes.map { requests.labels($0, "200") }
        let failed = routes.map { requests.labels($0, "500") }
        let timers = routes.map { latency.labels($0) }
        var generator = SystemRandomNumberGenerator()
        let pause = UInt32(1_000_000 / rate)
        while true {
            let r = Int.random(in: 0..<routes.count, using: &generator)
            inProgress.trackInProgress {
                let seconds = Double.random(in: 0.001...0.3, using: &generator) * (r == 2 ? 4 : 1)
                timers[r].observe(seconds)
                if Int.random(in: 0..<50, using: &generator) == 0 { failed[r].increment() } else { ok[r].increment() }
            }
            usleep(pause)
        }
    }
}
