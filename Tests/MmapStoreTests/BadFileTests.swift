import Foundation
import MmapStore
import Testing
import TestSupport

/// Files are built by hand here (little-endian int32 length, key, 1–8 spaces, two float64s),
/// independently of FileFormat, so the reader is checked against the format, not against itself.
enum HandMade {
    static func le32(_ v: Int32) -> [UInt8] { withUnsafeBytes(of: v.littleEndian) { Array($0) } }
    static func le64(_ v: Double) -> [UInt8] { withUnsafeBytes(of: v.bitPattern.littleEndian) { Array($0) } }

    static func entry(_ key: [UInt8], value: Double = 1, timestamp: Double = 0) -> [UInt8] {
        let pad = 8 - (key.count + 4) % 8
        return le32(Int32(key.count)) + key + Array(repeating: 0x20, count: pad) + le64(value) + le64(timestamp)
    }

    static func entry(_ key: String, value: Double = 1) -> [UInt8] { entry(Array(key.utf8), value: value) }

    /// A header: `used`, then the four marker bytes.
    static func header(used: Int, marker: [UInt8] = [0, 0, 0, 0]) -> [UInt8] { le32(Int32(truncatingIfNeeded: used)) + marker }

    static func file(_ entries: [[UInt8]], marker: [UInt8] = [0, 0, 0, 0], size: Int? = nil) -> [UInt8] {
        let body = entries.flatMap { $0 }
        var bytes = header(used: 8 + body.count, marker: marker) + body
        if let size { bytes += Array(repeating: 0, count: max(0, size - bytes.count)) }
        return bytes
    }

    static let goodKey = #"["c", "c_total", {"a": "x"}, "h"]"#
}

@Suite("Defensive reading of bad files")
struct BadFileTests {
    enum Expected {
        case kind(MetricFileError.Kind)
        case invalidKey(offset: Int, reasonContains: String)
        case badName(containing: String)
    }

    struct Case: CustomTestStringConvertible, Sendable {
        let name: String
        let file: String
        let make: @Sendable (String) throws -> Void
        let expected: @Sendable () -> Expected
        var testDescription: String { name }
    }

    static func write(_ bytes: [UInt8]) -> @Sendable (String) throws -> Void {
        { path in try Data(bytes).write(to: URL(fileURLWithPath: path)) }
    }

    static let good = HandMade.entry(HandMade.goodKey)  // 4 + 33 + 3 + 16 = 56 bytes
    static let n = good.count

    static let cases: [Case] = [
        Case(name: "0-byte file", file: "counter_1.db", make: write([]), expected: { .kind(.empty) }),
        Case(name: "shorter than the header", file: "counter_1.db", make: write([8, 0, 0, 0, 0]),
             expected: { .kind(.truncated(size: 5, needed: 8)) }),
        Case(name: "truncated: used beyond the file's size", file: "counter_1.db",
             make: write(Array(HandMade.file([good, good]).prefix(100))),
             expected: { .kind(.truncated(size: 100, needed: 8 + 2 * BadFileTests.n)) }),
        Case(name: "garbage header marker", file: "counter_1.db",
             make: write(HandMade.file([good], marker: [0xDE, 0xAD, 0xBE, 0xEF], size: 4096)),
             expected: { .kind(.unknownMarker) }),
        Case(name: "our marker with unknown version 99", file: "counter_1.db",
             make: write(HandMade.file([good], marker: [0x50, 0x4D, 0x50, 99], size: 4096)),
             expected: { .kind(.unknownVersion(99)) }),
        Case(name: "used below the header size", file: "counter_1.db",
             make: write(HandMade.header(used: 4) + Array(repeating: 0, count: 100)),
             expected: { .kind(.invalidUsed(4)) }),
        Case(name: "negative used", file: "counter_1.db",
             make: write(HandMade.header(used: -8) + Array(repeating: 0, count: 100)),
             expected: { .kind(.invalidUsed(-8)) }),
        Case(name: "entry length beyond the bytes in use", file: "counter_1.db",
             make: write(HandMade.header(used: 8 + n) + HandMade.le32(1000) + Array(good.dropFirst(4)) + [0, 0, 0, 0]),
             expected: { .kind(.entryOutOfBounds(offset: 8, keyLength: 1000)) }),
        Case(name: "negative entry length", file: "counter_1.db",
             make: write(HandMade.header(used: 8 + n) + HandMade.le32(-5) + Array(good.dropFirst(4))),
             expected: { .kind(.entryOutOfBounds(offset: 8, keyLength: -5)) }),
        Case(name: "entry whose value runs past used", file: "counter_1.db",
             make: write(HandMade.header(used: 8 + n + 20) + good + HandMade.le32(8) + Array("12345678".utf8) + [0x20, 0x20, 0x20, 0x20] + Array(repeating: 0, count: 64)),
             expected: { .kind(.entryOutOfBounds(offset: 8 + BadFileTests.n, keyLength: 8)) }),
        Case(name: "fewer than 4 bytes left for a length", file: "counter_1.db",
             make: write(HandMade.header(used: 8 + n + 2) + good + Array(repeating: 0, count: 64)),
             expected: { .kind(.entryOutOfBounds(offset: 8 + BadFileTests.n, keyLength: -1)) }),
        Case(name: "key that is not JSON", file: "counter_1.db",
             make: write(HandMade.file([good, HandMade.entry("not json")])),
             expected: { .invalidKey(offset: 8 + BadFileTests.n, reasonContains: "expected '['") }),
        Case(name: "key that is not UTF-8", file: "counter_1.db",
             make: write(HandMade.file([HandMade.entry(Array(#"["c"#.utf8) + [0xFF, 0xFE] + Array(#"", "c_total", {}, "h"]"#.utf8))])),
             expected: { .invalidKey(offset: 8, reasonContains: "not valid UTF-8") }),
        Case(name: "wrongly named file: unknown type", file: "weird_1.db", make: write(HandMade.file([good])),
             expected: { .badName(containing: "unknown metric type 'weird'") }),
        Case(name: "wrongly named file: unknown gauge mode", file: "gauge_bogus_1.db", make: write(HandMade.file([good])),
             expected: { .badName(containing: "unknown gauge mode 'bogus'") }),
        Case(name: "wrongly named file: no owner", file: "counter_.db", make: write(HandMade.file([good])),
             expected: { .badName(containing: "file name is not") }),
        Case(name: "symbolic link to a good file", file: "counter_2.db",
             make: { path in
                 let target = path + ".target"
                 try Data(HandMade.file([good], size: 4096)).write(to: URL(fileURLWithPath: target))
                 try FileManager.default.createSymbolicLink(atPath: path, withDestinationPath: target)
             },
             expected: { .kind(.symlink) }),
        Case(name: "a directory named x.db", file: "x.db",
             make: { path in try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: false) },
             expected: { .kind(.notRegularFile) }),
        Case(name: "a file that vanished", file: "counter_3.db", make: { _ in }, expected: { .kind(.vanished) }),
    ]

    @Test("each bad file yields its own typed error naming the file", arguments: cases)
    func badFile(_ c: Case) throws {
        let dir = TempDirectory("badfile")
        defer { dir.remove() }
        let path = dir.file(c.file)
        try c.make(path)
        let error: MetricFileError
        switch c.expected() {
        case .badName(let fragment):
            error = try #require(throws: MetricFileError.self) { try MetricFileName(validatingPath: path) }
            guard case .badName(let why) = error.kind else { Issue.record("got \(error.kind)"); return }
            #expect(why.contains(fragment), "\(why)")
            // The content is fine: only the name is wrong.
            #expect(try MetricFileReader.decodeAll(path: path).entries.count == 1)
        case .kind(let kind):
            error = try #require(throws: MetricFileError.self) { try MetricFileReader.decodeAll(path: path) }
            #expect(error.kind == kind)
        case .invalidKey(let offset, let fragment):
            error = try #require(throws: MetricFileError.self) { try MetricFileReader.decodeAll(path: path) }
            guard case .invalidKey(let at, let why) = error.kind else { Issue.record("got \(error.kind)"); return }
            #expect(at == offset)
            #expect(why.reason.contains(fragment), "\(why)")
        }
        #expect(error.path == path)
        #expect(error.description.hasPrefix(path + ": "))
    }

    @Test("the bad-file cases give pairwise different errors")
    func allDifferent() throws {
        var seen: [String: String] = [:]
        for c in Self.cases {
            let dir = TempDirectory("badfile")
            defer { dir.remove() }
            try c.make(dir.file(c.file))
            let kind: MetricFileError.Kind
            if case .badName = c.expected() {
                kind = try #require(throws: MetricFileError.self) { try MetricFileName(validatingPath: dir.file(c.file)) }.kind
            } else {
                kind = try #require(throws: MetricFileError.self) { try MetricFileReader.decodeAll(path: dir.file(c.file)) }.kind
            }
            let text = "\(kind)"
            #expect(seen[text] == nil, "\(c.name) gives the same error as \(seen[text] ?? "")")
            seen[text] = c.name
        }
    }

    @Test("an all-zero file and a header-only file hold no entries (as in Python)")
    func emptyButValid() throws {
        let dir = TempDirectory("badfile")
        defer { dir.remove() }
        try Data(count: 65_536).write(to: URL(fileURLWithPath: dir.file("counter_1.db")))
        try Data(HandMade.file([], size: 65_536)).write(to: URL(fileURLWithPath: dir.file("counter_2.db")))
        for name in ["counter_1.db", "counter_2.db"] {
            let r = try MetricFileReader.decodeAll(path: dir.file(name))
            #expect(r.entries.isEmpty)
            #expect(r.writer == .python)
        }
        #expect(try pythonEntries([dir.file("counter_1.db"), dir.file("counter_2.db")]).values.allSatisfy { $0.isEmpty })
    }

    @Test("random damage to a file never crashes the reader; it reads or throws MetricFileError")
    func fuzzedFilesNeverCrash() throws {
        let dir = TempDirectory("badfile-fuzz")
        defer { dir.remove() }
        let store = try ProcessStore(directory: dir.path, identity: .fixed("1"))
        for i in 0..<40 {
            try store.series(kind: .counter, key: SeriesKey(family: "f", sample: "f_total", labels: [Label("i", "\(i)\u{e9}\"")], help: "h")).add(Double(i))
        }
        store.close()
        let original = try readBytes(dir.file("counter_1.db"))
        let used = Int(int32(original, at: 0))
        var rng = KeyCodecTests.SplitMix(state: 7)
        var outcomes: [String: Int] = [:]
        let path = dir.file("counter_9.db")
        for round in 0..<3000 {
            var b = original
            switch round % 3 {
            case 0:  // flip a few bytes inside the used part (header included)
                for _ in 0..<Int.random(in: 1...4, using: &rng) { b[Int.random(in: 0..<used, using: &rng)] = UInt8.random(in: 0...255, using: &rng) }
            case 1:  // cut the file anywhere
                b = Array(b.prefix(Int.random(in: 0...used + 8, using: &rng)))
            default:  // put a random int32 somewhere on an 8-byte boundary (lengths, used)
                let at = Int.random(in: 0..<(used / 8), using: &rng) * 8
                b.replaceSubrange(at..<at + 4, with: HandMade.le32(Int32.random(in: Int32.min...Int32.max, using: &rng)))
            }
            try Data(b).write(to: URL(fileURLWithPath: path))
            do {
                _ = try MetricFileReader.decodeAll(path: path)
                outcomes["ok", default: 0] += 1
            } catch {
                outcomes[error.reasonCode.rawValue, default: 0] += 1
            }
        }
        #expect(outcomes.count >= 4, "\(outcomes)")
    }
}
