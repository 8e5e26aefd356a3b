import SystemCalls
import MmapStore
#if !PMP_LIBFUZZER
import Foundation  // exit() for the command-line tool only
#endif

// Two builds of one harness (see Fuzz/README.md):
// - with `-sanitize=fuzzer -D PMP_LIBFUZZER`, libFuzzer drives `LLVMFuzzerTestOneInput`;
// - otherwise this is a command-line tool: a seeded random-mutation driver that needs no
//   fuzzer runtime, a replayer for corpus and crash files, and the corpus generator.

/// The scratch directory for the file the harness rewrites: `$PMP_FUZZ_DIR` when set.
func scratchDirectory() -> String {
    if let dir = Sys.environment("PMP_FUZZ_DIR"), !dir.isEmpty { return dir }
    let base = Sys.environment("TMPDIR").flatMap { $0.isEmpty ? nil : $0 } ?? "/tmp"
    do { return try Sys.mkdtemp(base + "/pmp-fuzz-XXXXXX") } catch { fatalError("\(error)") }
}

func makeHarness() -> Harness {
    do { return try Harness(directory: scratchDirectory()) } catch { fatalError("cannot create the scratch file: \(error)") }
}

#if PMP_LIBFUZZER

nonisolated(unsafe) let harness = makeHarness()

/// libFuzzer's entry point.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzOne(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    harness.run(UnsafeRawBufferPointer(start: data, count: size))
    return 0
}

/// libFuzzer's driver, for programs that have their own `main`.
@_silgen_name("LLVMFuzzerRunDriver")
func LLVMFuzzerRunDriver(
    _ argc: UnsafeMutablePointer<CInt>,
    _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?>,
    _ callback: @convention(c) (UnsafePointer<UInt8>?, Int) -> CInt
) -> CInt

/// SwiftPM links an executable with `main` aliased to `<module>_main` (so that tests can link
/// it); with no `@main` in this build, that function hands over to libFuzzer's driver.
@_cdecl("prom_multiproc_fuzz_main")
public func fuzzerMain(_ argc: CInt, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> CInt {
    var argc = argc
    var argv = argv
    return LLVMFuzzerRunDriver(&argc, &argv) { data, size in fuzzOne(data, size) }
}

#else

@main
struct FuzzTool {
    static let usage = """
        usage: prom-multiproc-fuzz mutate [--runs N] [--seed S] [--max-len L] CORPUS_DIR...
               prom-multiproc-fuzz replay FILE_OR_DIR...
               prom-multiproc-fuzz input --seed S --iteration I [--max-len L] --out FILE CORPUS_DIR...
               prom-multiproc-fuzz make-corpus DIR

        mutate       runs N mutated inputs (default 1000000), each derived from (seed, iteration)
                     alone, so any one of them can be rebuilt with `input`.
        replay       runs the checks on each file (a corpus, or a crash file from libFuzzer).
        input        writes the input of one iteration of `mutate` to FILE.
        make-corpus  writes seed files with this package's writer (MetricFile).
        """

    static func main() {
        var args = Array(CommandLine.arguments.dropFirst())
        guard !args.isEmpty else { fail(usage) }
        let command = args.removeFirst()
        var runs = 1_000_000
        var seed: UInt64 = 1
        var maxLength = 1 << 17
        var iteration: UInt64?
        var out: String?
        var paths: [String] = []
        while !args.isEmpty {
            let a = args.removeFirst()
            func value() -> String {
                guard !args.isEmpty else { fail("\(a) needs a value\n\n\(usage)") }
                return args.removeFirst()
            }
            switch a {
            case "--runs": runs = number(value(), a)
            case "--seed": seed = number(value(), a)
            case "--max-len": maxLength = number(value(), a)
            case "--iteration": iteration = number(value(), a)
            case "--out": out = value()
            case "-h", "--help": print(usage); return
            default: paths.append(a)
            }
        }
        switch command {
        case "mutate":
            let corpus = loadCorpus(paths)
            mutate(corpus: corpus, runs: runs, seed: seed, maxLength: maxLength)
        case "replay":
            let harness = makeHarness()
            let corpus = loadCorpus(paths)
            for input in corpus { input.bytes.withUnsafeBytes { harness.run($0) } }
            print("replayed \(corpus.count) input(s): no property violated")
        case "input":
            guard let iteration, let out else { fail(usage) }
            let corpus = loadCorpus(paths)
            let bytes = Mutator.input(corpus: corpus.map(\.bytes), seed: seed, iteration: iteration, maxLength: maxLength)
            do { try DirectoryFiles.writeAtomically(bytes, to: out) } catch { fail("\(error)") }
            print("wrote \(bytes.count) bytes to \(out)")
        case "make-corpus":
            guard let dir = paths.first else { fail(usage) }
            do { try CorpusWriter.write(into: dir) } catch { fail("\(error)") }
        default:
            fail(usage)
        }
    }

    static func mutate(corpus: [(name: String, bytes: [UInt8])], runs: Int, seed: UInt64, maxLength: Int) {
        let harness = makeHarness()
        let seeds = corpus.map(\.bytes)
        let start = Sys.monotonicNanoseconds()
        var lastReport = start
        for i in 0..<runs {
            let input = Mutator.input(corpus: seeds, seed: seed, iteration: UInt64(i), maxLength: maxLength)
            input.withUnsafeBytes { harness.run($0) }
            let now = Sys.monotonicNanoseconds()
            if now - lastReport > 10_000_000_000 {
                lastReport = now
                print("#\(i + 1) execs, \(Int(Double(i + 1) / (Double(now - start) / 1e9))) exec/s")
            }
        }
        let seconds = Double(Sys.monotonicNanoseconds() - start) / 1e9
        print("done: \(runs) execs over \(seeds.count) seed input(s), seed \(seed), \(String(Int(seconds))) s, \(Int(Double(runs) / max(seconds, 1e-9))) exec/s; no crash, no property violated")
    }

    static func loadCorpus(_ paths: [String]) -> [(name: String, bytes: [UInt8])] {
        var out: [(name: String, bytes: [UInt8])] = []
        for p in paths {
            do {
                let st = try DirectoryFiles.status(p)
                if st.isDirectory {
                    for name in try DirectoryFiles.names(in: p) where !name.hasPrefix(".") {
                        let path = p + "/" + name
                        guard (try? DirectoryFiles.status(path))?.isRegular == true else { continue }
                        out.append((path, try DirectoryFiles.read(path)))
                    }
                } else {
                    out.append((p, try DirectoryFiles.read(p)))
                }
            } catch { fail("\(error)") }
        }
        guard !out.isEmpty else { fail("no input files in \(paths)") }
        return out
    }

    static func number<T: FixedWidthInteger>(_ text: String, _ option: String) -> T {
        guard let v = T(text) else { fail("\(option) needs a number, not '\(text)'") }
        return v
    }

    static func fail(_ message: String) -> Never {
        Sys.writeStandardError(message + "\n")
        exit(2)
    }
}

#endif
