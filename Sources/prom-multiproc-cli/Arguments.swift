import Foundation
import PromMetrics

/// Exit codes of every subcommand (documented in `--help` and the README).
enum ExitCode: Int32 {
    /// Success.
    case ok = 0
    /// The operation failed (a system error, an unreadable or bad file).
    case failure = 1
    /// The command line was wrong.
    case usage = 2
    /// Refused to act because it would be unsafe (live writers, a busy directory).
    case refused = 3
}

/// A command-line mistake, reported as `prom-multiproc-cli <command>: <message>` with exit 2.
struct UsageError: Error, CustomStringConvertible {
    var message: String
    var description: String { message }
}

/// A subcommand's declared options.
struct OptionSpec {
    /// Options taking a value (`--dir DIR`), with their help text.
    var valued: [(name: String, help: String)] = []
    /// Flags (`--force`), with their help text.
    var flags: [(name: String, help: String)] = []
}

/// The parsed command line of one subcommand.
struct Arguments {
    var values: [String: String] = [:]
    /// Every value of each valued option, in order, for options that may repeat
    /// (`--grouping a=1 --grouping b=2`); `values` keeps the last one.
    var repeated: [String: [String]] = [:]
    var flags: Set<String> = []
    var positionals: [String] = []

    /// Parses `--name value`, `--name=value`, `--flag` and positionals; `--` ends options.
    init(_ args: [String], spec: OptionSpec) throws(UsageError) {
        let valued = Set(spec.valued.map(\.name))
        let flagNames = Set(spec.flags.map(\.name))
        var i = 0
        var onlyPositionals = false
        while i < args.count {
            let a = args[i]
            i += 1
            if onlyPositionals || !a.hasPrefix("--") || a == "-" {
                positionals.append(a)
                continue
            }
            if a == "--" { onlyPositionals = true; continue }
            var name = String(a.dropFirst(2))
            var inline: String?
            if let eq = name.firstIndex(of: "=") {
                inline = String(name[name.index(after: eq)...])
                name = String(name[..<eq])
            }
            if flagNames.contains(name) {
                if inline != nil { throw UsageError(message: "--\(name) takes no value") }
                flags.insert(name)
            } else if valued.contains(name) {
                let value: String
                if let inline {
                    value = inline
                } else {
                    guard i < args.count else { throw UsageError(message: "--\(name) needs a value") }
                    value = args[i]
                    i += 1
                }
                values[name] = value
                repeated[name, default: []].append(value)
            } else {
                throw UsageError(message: "unknown option --\(name)")
            }
        }
    }

    /// An integer option, checked against a range.
    func integer(_ name: String, default value: Int, range: ClosedRange<Int>) throws(UsageError) -> Int {
        guard let s = values[name] else { return value }
        guard let v = Int(s), range.contains(v) else {
            throw UsageError(message: "--\(name) must be a whole number from \(range.lowerBound) to \(range.upperBound), not '\(s)'")
        }
        return v
    }

    /// A decimal option, checked against a range.
    func decimal(_ name: String, default value: Double, range: ClosedRange<Double>) throws(UsageError) -> Double {
        guard let s = values[name] else { return value }
        guard let v = Double(s), range.contains(v) else {
            throw UsageError(message: "--\(name) must be a number from \(range.lowerBound) to \(range.upperBound), not '\(s)'")
        }
        return v
    }

    /// The multiprocess directory: `--dir`, else the environment's, read by the same rule the
    /// instrumentation uses (``MetricStorage/environmentDirectory()``); it must be an existing
    /// directory.
    func directory() throws(UsageError) -> String {
        guard let dir = values["dir"] ?? MetricStorage.environmentDirectory(), !dir.isEmpty else {
            throw UsageError(message: "no directory: pass --dir DIR or set PROMETHEUS_MULTIPROC_DIR")
        }
        var isDir: ObjCBool = false
        guard FileManager.default.fileExists(atPath: dir, isDirectory: &isDir), isDir.boolValue else {
            throw UsageError(message: "\(dir) is not a directory")
        }
        return dir
    }
}

/// Writes a line to standard error.
func printError(_ line: String) {
    FileHandle.standardError.write(Data((line + "\n").utf8))
}

/// Writes text to standard output, unbuffered.
func printOut(_ text: String) {
    FileHandle.standardOutput.write(Data(text.utf8))
}

/// The `--help` text of a subcommand, built from its spec.
func helpText(command: String, synopsis: String, about: String, spec: OptionSpec, exitCodes: String) -> String {
    var out = "usage: prom-multiproc-cli \(command) \(synopsis)\n\n\(about)\n\noptions:\n"
    let rows = spec.valued.map { ("--\($0.name) VALUE", $0.help) } + spec.flags.map { ("--\($0.name)", $0.help) } + [("--help", "show this help")]
    let width = (rows.map(\.0.count).max() ?? 0) + 2
    for (k, v) in rows { out += "  " + k.padding(toLength: width, withPad: " ", startingAt: 0) + v + "\n" }
    out += "\nexit codes:\n" + exitCodes + "\n"
    return out
}
