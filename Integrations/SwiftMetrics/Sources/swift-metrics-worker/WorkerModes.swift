import Dispatch
import Foundation
import Metrics
import PromMetrics
import PromMultiprocMetrics

enum WorkerModes {
    static func usage() -> Never {
        FileHandle.standardError.write(Data("usage: swift-metrics-worker write ITERATIONS THREADS | clash | bad-buckets\n".utf8))
        exit(2)
    }

    /// The values the multiprocess test expects, per process:
    ///
    /// - `worker_requests_total{route="/a"}`: iterations × threads
    /// - `worker_bytes_total`: iterations × threads × 0.5
    /// - `worker_latency` (Timer, 2 ms each): iterations × threads in `le="0.005"`
    /// - `worker_payload` (aggregating Recorder, 100 each): iterations × threads in `le="100.0"`
    /// - `worker_inflight` (Meter, livesum): 1 while the process lives
    /// - `worker_generation` (Gauge, mode `sum` by configuration): 3, kept after exit
    static func write(iterations: Int, threads: Int) {
        var configuration = PrometheusMultiprocessMetricsFactory.Configuration()
        configuration.gaugeModes["worker.generation"] = .sum
        MetricsSystem.bootstrap(PrometheusMultiprocessMetricsFactory(configuration: configuration))

        DispatchQueue.concurrentPerform(iterations: threads) { _ in
            // Metrics are made inside the loop on purpose, as Hummingbird's middleware makes
            // them per request: every make after the first must find the cached handler.
            let bytes = FloatingPointCounter(label: "worker.bytes")
            let inflight = Meter(label: "worker.inflight")
            let payload = Recorder(label: "worker.payload")
            for _ in 0..<iterations {
                Counter(label: "worker.requests", dimensions: [("route", "/a")]).increment()
                bytes.increment(by: 0.5)
                inflight.increment()
                Timer(label: "worker.latency", dimensions: [("route", "/a")]).recordNanoseconds(2_000_000)
                payload.record(100)
                inflight.decrement()
            }
        }
        Meter(label: "worker.inflight").increment()
        Gauge(label: "worker.generation").record(3)

        FileHandle.standardOutput.write(Data("ready\n".utf8))
        _ = FileHandle.standardInput.readDataToEndOfFile()
        exit(0)
    }

    /// One name as two kinds of metric: the backend must stop the process with a message.
    static func clash() -> Never {
        let registry = Registry(storage: .inProcess)
        MetricsSystem.bootstrap(PrometheusMultiprocessMetricsFactory(registry: registry))
        Counter(label: "jobs").increment()
        Meter(label: "jobs").increment()
        FileHandle.standardError.write(Data("clash did not stop the process\n".utf8))
        exit(0)
    }

    /// Unsorted buckets for one label: the factory must refuse them when it is made.
    static func badBuckets() -> Never {
        var configuration = PrometheusMultiprocessMetricsFactory.Configuration()
        configuration.timerBuckets["db.query"] = [0.5, 0.1]
        _ = PrometheusMultiprocessMetricsFactory(registry: Registry(storage: .inProcess), configuration: configuration)
        FileHandle.standardError.write(Data("bad buckets did not stop the process\n".utf8))
        exit(0)
    }
}
