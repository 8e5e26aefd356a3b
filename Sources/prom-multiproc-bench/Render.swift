import Foundation
import PromExposition
import SystemCalls
import MultiprocessCollector

// `render`: merges a directory once, then renders the merged families in the text format and in
// protobuf, alternately, `--reps` times each (first text, then protobuf, then the other way
// round), printing one JSON line per rendering: the format, its time and its size. Both formats
// render the same families in the same process, so the driver's ratio compares the renderers
// alone, without the merge that dominates a scrape. Each line also has the time and size of
// gzip-compressing that body as `/metrics` does for `Accept-Encoding: gzip` (zlib level 1);
// `--text-out FILE` writes the text body once, so the driver can time prometheus_client's
// `gzip.compress` on the same bytes. Then text through a kept body, as `/metrics` renders it
// scrape after scrape (see the end).

func renderCommand(_ options: Options) throws {
    guard let directory = options.directory else { throw UsageError("render needs --dir") }
    let reps = max(1, options.int("reps") ?? 15)
    let result = MultiProcessCollector(directory: directory, includeSelfMetrics: false).collect()
    if !result.problems.isEmpty {
        Sys.writeStandardError("prom-multiproc-bench: \(result.problems.count) bad files in \(directory)\n")
    }
    let samples = result.families.reduce(0) { $0 + $1.samples.count }
    for rep in 0..<reps {
        let order: [ExpositionFormat] = rep % 2 == 0 ? [.prometheusText, .protobuf] : [.protobuf, .prometheusText]
        for format in order {
            let start = Sys.monotonicNanoseconds()
            let body = Exposition.render(result.families, format: format)
            let elapsed = Sys.monotonicNanoseconds() - start
            let gzipStart = Sys.monotonicNanoseconds()
            let compressed = Gzip.compress(body)
            let gzipElapsed = Sys.monotonicNanoseconds() - gzipStart
            if rep == 0, format == .prometheusText, let textOut = options.string("text-out") {
                try Data(body).write(to: URL(fileURLWithPath: textOut))
            }
            print(jsonLine([
                "format": .string(format.rawValue), "ms": .double(Double(elapsed) / 1e6), "bytes": .int(body.count),
                "samples": .int(samples), "gzip_ms": .double(Double(gzipElapsed) / 1e6), "gzip_bytes": .int(compressed.count),
            ]))
        }
    }
    // Text through a kept body (`ExpositionCache`, as `/metrics` renders): the same series with
    // every value changed since the last rendering (`text-kept-changed`), then again unchanged
    // (`text-kept-same`).
    let cache = ExpositionCache()
    var families = result.families
    _ = cache.render(families, format: .prometheusText)
    for _ in 0..<reps {
        for f in families.indices {
            for s in families[f].samples.indices { families[f].samples[s].value += 1 }
        }
        for label in ["text-kept-changed", "text-kept-same"] {
            let start = Sys.monotonicNanoseconds()
            let body = cache.render(families, format: .prometheusText)
            let elapsed = Sys.monotonicNanoseconds() - start
            print(jsonLine([
                "format": .string(label), "ms": .double(Double(elapsed) / 1e6), "bytes": .int(body.count), "samples": .int(samples),
            ]))
        }
    }
}
