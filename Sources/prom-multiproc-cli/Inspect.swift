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
        offset, every key. A native-histogram file (native_<pid>.pmh) shows its series and
        their bucket counts; an exemplar file (exemplars_<pid>.pmx) its samples' latest exemplars.
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
            if MetricFileName(parsing: base)?.isNativeHistogram == true {
                bad = !inspectNative(path, quiet: quiet) || bad
                continue
            }
            if MetricFileName(parsing: base)?.isExemplars == true {
                bad = !inspectExemplars(path, quiet: quiet) || bad
                continue
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

    /// Shows an exemplar file: each sample with its latest exemplar.
    /// - Returns: whether the file is valid.
    static func inspectExemplars(_ path: String, quiet: Bool) -> Bool {
        var reader = MetricFileReader()
        do {
            let file = try ExemplarFile.read(path: path, reader: &reader)
            guard !quiet else { return true }
            let liveness = (try? Liveness.probe(path: path)).map(\.description) ?? "unknown"
            printOut("\(path): exemplars, \(file.entries.count) samples with one, \(file.count) entries, owner \(liveness)\n")
            for e in file.entries {
                let labels = e.exemplar.labels.map { "\($0.name)=\"\($0.value)\"" }.joined(separator: ",")
                printOut("  \(e.key) # {\(labels)} \(GoFloat.format(e.exemplar.value)) \(e.exemplar.timestamp)\n")
            }
            return true
        } catch {
            printError("inspect: \(error)")
            return false
        }
    }

    /// Shows a native-histogram file: each series with its configuration and bucket counts.
    /// - Returns: whether the file is valid.
    static func inspectNative(_ path: String, quiet: Bool) -> Bool {
        var reader = MetricFileReader()
        do {
            let file = try NativeHistogramFile.read(path: path, reader: &reader)
            guard !quiet else { return true }
            let liveness = (try? Liveness.probe(path: path)).map(\.description) ?? "unknown"
            printOut("\(path): native histograms, \(file.series.count) series, \(file.entries) entries, owner \(liveness)\n")
            for s in file.series {
                // A summary's age bucket keeps its expiry where a native histogram keeps its zero threshold.
                let second = SummaryWindowEntry(sample: s.key.sample) == nil ? "zero threshold" : "summary age bucket, expires at UNIX time"
                let configuration = s.schema.map { "schema \($0), \(second) \(GoFloat.format(s.zeroThreshold ?? 0))" } ?? "not configured yet"
                printOut("  \(s.key) (\(configuration))\n")
                for (bucket, count) in s.buckets {
                    let kind = String(UnicodeScalar(bucket.kind.rawValue))
                    printOut("    \(kind) schema=\(bucket.schema) index=\(bucket.index) count=\(count)\n")
                }
            }
            return true
        } catch {
            printError("inspect: \(error)")
            return false
        }
    }
}
