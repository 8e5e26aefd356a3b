import PromHTTP
import Foundation
import MmapStore

/// `demo`: the README's main job. Worker processes write realistic metrics into a temporary
/// directory; one is killed and restarted on the way; one endpoint serves the merged metrics.
enum DemoCommand {
    static let spec = OptionSpec(valued: [
        ("port", "the port to serve on (default 9464; 0 picks a free one)"),
        ("bind", "the address to listen on (default 127.0.0.1)"),
        ("workers", "worker processes (default 3)"),
        ("duration", "stop after this many seconds (default: run until Ctrl-C)"),
    ])

    static let help = helpText(
        command: "demo", synopsis: "[--port N] [--workers N] [--duration S]",
        about: """
        Starts worker processes that record simulated HTTP requests (a counter by route and
        status, a latency histogram, an in-progress gauge, a build info) into a temporary
        multiprocess directory, kills one with SIGKILL and starts a replacement after a few
        seconds, and serves the merged metrics. Prints the URL and a first scrape. The
        directory is removed on exit.
        """, spec: spec,
        exitCodes: "  0 stopped (Ctrl-C, SIGTERM or --duration)\n  1 cannot start (port in use, no temporary directory)\n  2 usage error")

    static func run(_ args: Arguments) throws -> ExitCode {
        let workerCount = try args.integer("workers", default: 3, range: 1...64)
        let duration = args.values["duration"] == nil ? nil : try args.decimal("duration", default: 0, range: 0...86_400)
        var serveArgs = args
        serveArgs.values["port"] = args.values["port"] ?? "9464"
        let configuration = try ServeCommand.configuration(serveArgs)

        let dir = try DirectoryFiles.makeTemporaryDirectory(prefix: "prom-multiproc-demo")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let exe = (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? CommandLine.arguments[0]
        func startWorker() throws -> Process {
            let p = Process()
            p.executableURL = URL(fileURLWithPath: exe)
            p.arguments = ["demo-worker", "--dir", dir]
            var env = ProcessInfo.processInfo.environment
            env["SWIFT_BACKTRACE"] = "enable=no"
            p.environment = env
            try p.run()
            return p
        }
        var workers = try (0..<workerCount).map { _ in try startWorker() }
        defer {
            for w in workers where w.isRunning { w.terminate() }
            for w in workers { w.waitUntilExit() }
        }
        printOut("demo: \(workerCount) workers (pids \(workers.map { String($0.processIdentifier) }.joined(separator: ", "))) writing into \(dir)\n")

        let metrics = MetricsHandler(directory: dir)
        let server = try MetricsHTTPServer(configuration: configuration, handler: servingRoutes(metrics))
        try server.shutdownOnSignals()
        try server.start()
        let url = "http://\(ServeCommand.displayHost(configuration.bindAddress)):\(server.port)/metrics"

        // Let the workers record something, then kill one the hard way and replace it: its
        // counters survive in its file, its live gauges vanish from the merge by themselves.
        Thread.sleep(forTimeInterval: 1.5)
        let victim = workers[0]
        kill(victim.processIdentifier, SIGKILL)
        victim.waitUntilExit()
        let replacement = try startWorker()
        workers[0] = replacement
        printOut("demo: killed worker \(victim.processIdentifier) with SIGKILL, started \(replacement.processIdentifier) in its place\n")
        Thread.sleep(forTimeInterval: 0.5)

        let first = metrics.respond(method: "GET")
        printOut("demo: serving the merged metrics at \(url)\n\n--- first scrape ---\n")
        FileHandle.standardOutput.write(Data(first.body))
        printOut("--- end of first scrape; try: curl \(url) ---\n")

        if let duration {
            DispatchQueue.global().asyncAfter(deadline: .now() + duration) { server.shutdown() }
        }
        server.waitUntilStopped()
        printOut("demo: stopped\n")
        return .ok
    }
}
