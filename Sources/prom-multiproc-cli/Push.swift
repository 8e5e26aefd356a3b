import MultiprocessCollector
import PromHTTP

/// `push`: merge the directory once and push it to a Pushgateway (the end of a batch job).
enum PushCommand {
    static let spec = OptionSpec(
        valued: [("gateway", "the Pushgateway's base URL: http://HOST:PORT[/PREFIX] (http only)"),
                 ("job", "the job label of the group"),
                 ("grouping", "another label of the group, NAME=VALUE (repeatable)"),
                 ("dir", "the multiprocess directory (default: $PROMETHEUS_MULTIPROC_DIR)"),
                 ("timeout", "seconds for connecting, sending and the answer (default 10)")],
        flags: [("replace", "PUT: replace the whole group (default: POST, replace only the families pushed)"),
                ("no-self-metrics", "leave out the collector's own metrics")])

    static let help = helpText(
        command: "push", synopsis: "--gateway URL --job NAME [--grouping NAME=VALUE]... [--replace] [--dir DIR] [--timeout SECONDS]",
        about: """
        Merges the directory once, as collect does, and pushes the result in the text format
        0.0.4 to the Pushgateway at URL/metrics/job/NAME{/LABEL/VALUE}, for batch jobs that end
        before Prometheus could scrape them. Like prometheus_client:
          default    POST (pushadd_to_gateway): replaces the pushed families in the group and
                     keeps the group's other families
          --replace  PUT (push_to_gateway): replaces every metric of the group, so a family
                     no longer pushed disappears
        Grouping values that are empty or contain / or a space are sent as NAME@base64/VALUE
        (URL-safe base64), others percent-encoded. Bad files are skipped and reported on
        standard error.
        """, spec: spec,
        exitCodes: """
          0 pushed (the gateway answered 2xx)
          1 the push failed: the gateway is unreachable, did not answer in time, or refused the
            push (its reason is printed)
          2 usage error
        """)

    static func run(_ args: Arguments) throws -> ExitCode {
        guard let url = args.values["gateway"] else { throw UsageError(message: "--gateway URL is required") }
        guard let job = args.values["job"] else { throw UsageError(message: "--job NAME is required") }
        let timeout = try args.decimal("timeout", default: 10, range: 0.001...3600)
        var grouping: [String: String] = [:]
        for item in args.repeated["grouping"] ?? [] {
            guard let eq = item.firstIndex(of: "=") else {
                throw UsageError(message: "--grouping takes NAME=VALUE, not '\(item)'")
            }
            let name = String(item[..<eq])
            guard grouping[name] == nil else { throw UsageError(message: "--grouping \(name) is given twice") }
            grouping[name] = String(item[item.index(after: eq)...])
        }
        let dir = try args.directory()
        let gateway: Pushgateway
        do {
            gateway = try Pushgateway(url: url, timeout: timeout)
            // Check the grouping key before merging, so a typo costs no merge.
            _ = try gateway.path(job: job, grouping: grouping)
        } catch {
            throw UsageError(message: error.description)
        }

        let collector = MultiProcessCollector(directory: dir, includeSelfMetrics: !args.flags.contains("no-self-metrics"))
        let families = collector.collect().families
        let replace = args.flags.contains("replace")
        try gateway.push(families, job: job, grouping: grouping, replace: replace)
        let samples = families.reduce(0) { $0 + $1.samples.count }
        let target = (try? gateway.pushURL(job: job, grouping: grouping)) ?? gateway.url
        printOut("pushed \(families.count) families (\(samples) samples) to \(target) with \(replace ? "PUT" : "POST")\n")
        return .ok
    }
}
