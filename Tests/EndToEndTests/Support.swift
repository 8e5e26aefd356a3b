import Foundation
import MmapStore
import TestSupport

/// Runs the CLI.
func cli(_ args: [String], environment: [String: String] = [:]) throws -> ProcessResult {
    try run(executable("prom-multiproc-cli"), args, environment: environment)
}

/// Creates `name` in `dir` as a closed (dead-owner) file of this package holding `entries`.
@discardableResult
func makeFile(_ dir: TempDirectory, kind: FileKind, owner: String, entries: [(SeriesKey, Double)] = []) throws -> MetricFile {
    let f = try MetricFile.claim(directory: dir.path, kind: kind, pid: owner)
    for (key, value) in entries { try f.slot(for: key.encoded()).set(value) }
    return f
}

/// A simple key.
func key(_ family: String, _ sample: String, _ labels: [(String, String)] = [], help: String = "help") -> SeriesKey {
    SeriesKey(family: family, sample: sample, labels: labels.map { Label($0.0, $0.1) }, help: help)
}

/// Copies a directory's regular files into a new temporary directory.
func copyDirectory(_ dir: TempDirectory) throws -> TempDirectory {
    let copy = TempDirectory("pmp-copy")
    for name in dir.names() {
        try FileManager.default.copyItem(atPath: dir.file(name), toPath: copy.file(name))
    }
    return copy
}
