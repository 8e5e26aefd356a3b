import PromExposition
import PromHTTP
import PromMetrics
import Foundation
import MmapStore
import MultiprocessCollector

/// Adds the commands that need the collector and the HTTP server.
func registerServingCommands(into commands: inout [String: Command]) {
    commands["serve"] = Command(spec: ServeCommand.spec, help: ServeCommand.help, run: ServeCommand.run)
    commands["collect"] = Command(spec: CollectCommand.spec, help: CollectCommand.help, run: CollectCommand.run)
    commands["demo"] = Command(spec: DemoCommand.spec, help: DemoCommand.help, run: DemoCommand.run)
    commands["demo-worker"] = Command(spec: DemoWorkerCommand.spec, help: DemoWorkerCommand.help, run: DemoWorkerCommand.run)
}

/// The HTTP routes of `serve` and `demo`: the library's `/metrics` handler, and a short index
/// at `/`; every other path is 404.
func servingRoutes(_ metrics: MetricsHandler) -> MetricsHTTPServer.Handler {
    MetricsHTTPServer.routing([
        "/metrics": { request in
            metrics.respond(method: request.method, path: request.path, query: request.query, headers: request.headers)
        },
        "/": { _ in HTTPResponse.text(200, "prom-multiproc: metrics at /metrics\n") },
    ])
}

/// `serve`: the HTTP endpoint.
enum ServeCommand {
    static let spec = OptionSpec(valued: [
        ("dir", "the multiprocess directory (default: $PROMETHEUS_MULTIPROC_DIR)"),
        ("bind", "the address to listen on (default 127.0.0.1; 0.0.0.0 or :: for all)"),
        ("port", "the port (default 9464; 0 picks a free one)"),
        ("max-connections", "open connections at most (default 64)"),
        ("header-timeout", "seconds a client has to send its request head (default 5)"),
        ("idle-timeout", "seconds an idle keep-alive connection stays open (default 30)"),
    ], flags: [
        ("no-process-metrics", "leave out the process_* metrics of the live workers and of serve itself"),
        ("no-created", "no _created series in OpenMetrics and protobuf (also: PROMETHEUS_DISABLE_CREATED_SERIES=true)"),
    ])

    static let help = helpText(
        command: "serve", synopsis: "[--dir DIR] [--bind ADDR] [--port N] [--no-process-metrics] [--no-created]",
        about: """
        Serves the merged metrics of the directory at /metrics (GET and HEAD), merging every
        file on each scrape, in Prometheus text 0.0.4, OpenMetrics 1.0.0 or protobuf as the
        Accept header asks. Adds the process metrics (CPU, memory, file descriptors, start
        time, as prometheus_client names them) of every live worker of this package and of
        serve itself, read from /proc and labelled by pid. Bounded: request head size, header
        and idle timeouts, a connection cap. Prints
        `listening on http://ADDR:PORT/metrics` once ready. SIGTERM or SIGINT stops it
        gracefully.
        """, spec: spec,
        exitCodes: "  0 stopped by SIGTERM/SIGINT\n  1 cannot listen (address in use, permission)\n  2 usage error")

    static func configuration(_ args: Arguments, defaultPort: Int = 9464) throws(UsageError) -> HTTPServerConfiguration {
        var c = HTTPServerConfiguration()
        c.bindAddress = args.values["bind"] ?? "127.0.0.1"
        c.port = try args.integer("port", default: defaultPort, range: 0...65535)
        c.maxConnections = try args.integer("max-connections", default: c.maxConnections, range: 1...10_000)
        c.headerTimeout = try args.decimal("header-timeout", default: c.headerTimeout, range: 0.1...3600)
        c.idleTimeout = try args.decimal("idle-timeout", default: c.idleTimeout, range: 0.1...86_400)
        return c
    }

    static func run(_ args: Arguments) throws -> ExitCode {
        let dir = try args.directory()
        for warning in DirectorySafety.directoryWarnings(dir) { printError("serve: warning: \(warning)") }
        let server = try MetricsHTTPServer(
            configuration: try configuration(args), handler: servingRoutes(
                MetricsHandler(directory: dir, processMetrics: !args.flags.contains("no-process-metrics"),
                               createdSeries: args.flags.contains("no-created") ? false : nil)))
        try server.shutdownOnSignals()
        try server.start()
        printOut("listening on http://\(displayHost(server.configuration.bindAddress)):\(server.port)/metrics\n")
        server.waitUntilStopped()
        return .ok
    }

    static func displayHost(_ address: String) -> String { address.contains(":") ? "[\(address)]" : address }
}

/// `collect`: print or write the merged exposition.
enum CollectCommand {
    static let spec = OptionSpec(
        valued: [("dir", "the multiprocess directory (default: $PROMETHEUS_MULTIPROC_DIR)"),
                 ("format", "text (Prometheus 0.0.4, default), openmetrics or protobuf (delimited MetricFamily messages)"),
                 ("output", "write to this file atomically instead of standard output (node_exporter's textfile collector)"),
                 ("name", "export only the samples of this full name, as /metrics?name[]= does (repeatable)")],
        flags: [("no-self-metrics", "leave out the collector's own metrics"),
                ("no-created", "no _created series in OpenMetrics and protobuf (also: PROMETHEUS_DISABLE_CREATED_SERIES=true)")])

    static let help = helpText(
        command: "collect",
        synopsis: "[--dir DIR] [--format text|openmetrics|protobuf] [--output FILE] [--name NAME]... [--no-created]",
        about: """
        Merges the directory once and prints the exposition, or writes it atomically (temporary
        file and rename) to --output. Bad files are skipped and reported on standard error.
        With --name, only the samples of the listed names (such as http_requests_total or
        latency_seconds_bucket) are merged and exported, as prometheus_client's
        restricted_registry keeps them.
        """, spec: spec,
        exitCodes: "  0 done (also when files were skipped)\n  1 the output cannot be written\n  2 usage error")

    static func run(_ args: Arguments) throws -> ExitCode {
        let dir = try args.directory()
        let format: ExpositionFormat
        switch args.values["format"] ?? "text" {
        case "text": format = .prometheusText
        case "openmetrics": format = .openMetrics
        case "protobuf": format = .protobuf
        case let other: throw UsageError(message: "--format must be text, openmetrics or protobuf, not '\(other)'")
        }
        let collector = MultiProcessCollector(directory: dir, includeSelfMetrics: !args.flags.contains("no-self-metrics"))
        let names = args.repeated["name"] ?? []
        let families = collector.collect(including: [], alongside: { _ in [] },
                                         names: names.isEmpty ? nil : SampleNameFilter(names),
                                         typesFromMetadata: format == .openMetrics,
                                         createdSeries: format != .prometheusText && !args.flags.contains("no-created")
                                             && !CreatedSeries.disabledByEnvironment(),
                                         exemplars: format != .prometheusText).families
        let body = Exposition.render(families, format: format)
        if let output = args.values["output"] {
            try DirectoryFiles.writeAtomically(body, to: output)
        } else {
            FileHandle.standardOutput.write(Data(body))
        }
        return .ok
    }
}
