import PromMetrics
import Foundation
import MmapStore

/// `inspect FILE...`: show and validate metric files.
enum InspectCommand {
    static let spec = OptionSpec(flags: [("quiet", "print only problems")])

    static let help = helpText(
        command: "inspect", synopsis: "FILE... [--quiet]",
        about: """
        Shows each file's header (writer, format version, bytes used, size), liveness, and its
        entries (offset, value, timestamp, key), and validates it: the name, every length and
        offset, every key.
        """, spec: spec,
        exitCodes: "  0 every file is valid\n  1 at least one file is bad (each problem is printed on standard error)\n  2 usage error")

    static func run(_ args: Arguments) throws -> ExitCode {
        guard !args.positionals.isEmpty else { throw UsageError(message: "name at least one file") }
        let quiet = args.flags.contains("quiet")
        var bad = false
        for path in args.positionals {
            let base = (path as NSString).lastPathComponent
            if MetricFileName(parsing: base) == nil {
                printError("inspect: \(path): \(MetricFileName.problem(with: base))")
                bad = true
            }
            do {
                let decoded = try MetricFileReader.decodeAll(path: path)
                if !quiet {
                    var reader = MetricFileReader()
                    let loaded = try reader.load(path: path)
                    let liveness = (try? Liveness.probe(path: path)).map(\.description) ?? "unknown"
                    printOut("\(path): writer \(decoded.writer), used \(loaded.bytes.count) of \(loaded.fileSize) bytes, \(decoded.entries.count) entries, owner \(liveness)\n")
                    for e in decoded.entries {
                        printOut("  @\(e.offset) value=\(GoFloat.format(e.value)) ts=\(e.timestamp) \(e.key)\n")
                    }
                }
            } catch {
                printError("inspect: \(error)")
                bad = true
            }
        }
        return bad ? .failure : .ok
    }
}
