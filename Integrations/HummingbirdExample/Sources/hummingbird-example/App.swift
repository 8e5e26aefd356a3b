import Foundation
import HTTPTypes
import Hummingbird
import Metrics
import PromHTTP
import PromMetrics
import PromMultiprocMetrics

/// One worker: a Hummingbird server on one port whose `MetricsMiddleware` writes through the
/// swift-metrics backend into this process's files under `PROMETHEUS_MULTIPROC_DIR`, and
/// which serves the merged metrics of every worker at `/metrics`.
enum App {
    /// Runs the worker until SIGTERM or SIGINT, or until the process `supervisor` is no
    /// longer its parent (a supervisor killed with SIGKILL leaves no worker behind).
    static func runWorker(host: String, port: Int, supervisor: pid_t? = nil) async throws {
        // Multiprocess mode follows PROMETHEUS_MULTIPROC_DIR (Registry.default), as in every
        // worker of a prefork deployment; without it the metrics stay in this process.
        // Bootstrap before anything makes a metric.
        MetricsSystem.bootstrap(PrometheusMultiprocessMetricsFactory())

        let pid = ProcessInfo.processInfo.processIdentifier
        let router = Router()
        // Counts requests (hb_requests_total), errors (hb_request_errors_total), times them
        // (http_server_request_duration, a histogram in seconds) and tracks requests in
        // progress (http_server_active_requests, a livesum gauge: a dead worker's share goes).
        router.add(middleware: MetricsMiddleware())
        router.get("/") { _, _ in
            "swift-prom-multiproc Hummingbird example, worker pid \(pid)\n"
        }
        router.get("/users/:id") { _, context in
            let id = try context.parameters.require("id")
            return "user \(id) (worker pid \(pid))\n"
        }
        router.get("/slow") { request, _ in
            let milliseconds = request.uri.queryParameters.get("ms", as: Int.self) ?? 50
            try await Task.sleep(for: .milliseconds(min(max(milliseconds, 0), 10_000)))
            return "slept \(milliseconds) ms (worker pid \(pid))\n"
        }
        router.get("/error") { _, _ -> String in
            throw HTTPError(.internalServerError, message: "an error, on purpose")
        }
        // The merged metrics of every worker (every file of the directory, plus each live
        // worker's process metrics), or this process's own without a directory: a
        // single-process deployment needs no `prom-multiproc-cli serve` beside it. The doc
        // comment of MetricsHandler shows this route; the tests check that it stays this code.
        // example: metrics-route
        let metrics = MetricsHandler(registry: .default)   // the directory of PROMETHEUS_MULTIPROC_DIR
        router.get("metrics") { request, _ -> Response in
            let r = metrics.respond(
                method: request.method.rawValue, path: request.uri.path, query: request.uri.query ?? "",
                headers: request.headers.map { HTTPHeader(name: $0.name.rawName, value: $0.value) })
            var headers = HTTPFields()
            for field in r.headers {
                if let name = HTTPField.Name(field.name) { headers.append(HTTPField(name: name, value: field.value)) }
            }
            return Response(status: .init(code: r.status), headers: headers,
                            body: .init(byteBuffer: ByteBuffer(bytes: r.body)))
        }
        // end example

        let app = Application(
            router: router,
            configuration: .init(address: .hostname(host, port: port), serverName: "hummingbird-example")
        )
        if let supervisor { exitWhenOrphaned(supervisor: supervisor) }
        // Stops gracefully on SIGTERM and SIGINT.
        try await app.runService()
    }

    /// Sends this process SIGTERM (a graceful stop) once its parent is no longer
    /// `supervisor`: the supervisor died without stopping its workers.
    private static func exitWhenOrphaned(supervisor: pid_t) {
        Thread.detachNewThread {
            while getppid() == supervisor { usleep(250_000) }
            FileHandle.standardError.write(Data("worker \(getpid()): supervisor \(supervisor) is gone; stopping\n".utf8))
            kill(getpid(), SIGTERM)
        }
    }
}
