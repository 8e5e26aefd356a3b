import Foundation
import MmapStore
import SystemCalls
import Testing
import TestSupport

/// A serving collector keeps the files it read twice unchanged mapped read-only, and reads
/// their values through the mapping. A file truncated under a mapping raises SIGBUS when a
/// page past its new end is touched: the read must fail, not end the process.
@Suite("Kept read-only mappings")
struct ReadMappingTests {
    /// A file of `pages` pages of 8-byte slots: slot `i` holds the double `i`.
    private func writeSlots(_ path: String, pages: Int) throws -> Int {
        let count = pages * 4096 / 8
        let data = (0..<count).map { Double($0) }.withUnsafeBytes { Data($0) }
        try data.write(to: URL(fileURLWithPath: path))
        return data.count
    }

    private func identity(_ path: String) throws -> FileIdentity {
        var reader = MetricFileReader()
        return try #require(try reader.peek(path: path).identity, "no birth time recorded for \(path)")
    }

    @Test func valuesAreReadThroughTheMappingAsTheFileHoldsThemNow() throws {
        let dir = TempDirectory("mapping"); defer { dir.remove() }
        let path = dir.path + "/counter_1.db"
        let length = try writeSlots(path, pages: 3)
        // A header: `used` = the whole file, prometheus_client's marker (zeros).
        let handle = try #require(FileHandle(forWritingAtPath: path))
        try handle.write(contentsOf: withUnsafeBytes(of: (UInt32(length).littleEndian, UInt32(0))) { Data($0) })
        let mapping = try #require(ReadMapping(path: path, identity: try identity(path), length: length))
        // A slot in each page, then written through the file, not the mapping.
        let offsets: [UInt32] = [16, 4096 + 8, 8192 + 4072]
        try handle.seek(toOffset: 4096 + 8)
        try handle.write(contentsOf: withUnsafeBytes(of: 2.5) { Data($0) })
        try handle.close()
        var values = [Double](repeating: -1, count: 3), stamps = [Double](repeating: -1, count: 3)
        let read = offsets.withUnsafeBufferPointer { o in
            mapping.gather(offsets: o, values: &values, stamps: &stamps)
        }
        #expect(read)
        #expect(values == [2, 2.5, Double((8192 + 4072) / 8)])
        #expect(stamps == [3, Double((4096 + 16) / 8), Double((8192 + 4080) / 8)])
    }

    @Test func aFileTruncatedUnderTheMappingFailsTheReadInsteadOfEndingTheProcess() throws {
        let dir = TempDirectory("mapping"); defer { dir.remove() }
        let path = dir.path + "/counter_1.db"
        let length = try writeSlots(path, pages: 4)
        let mapping = try #require(ReadMapping(path: path, identity: try identity(path), length: length))
        // Another process truncates the file to one page: the second page is now past its end.
        #expect(truncate(path, 4096) == 0)
        var values = [Double](repeating: -1, count: 2), stamps = [Double](repeating: -1, count: 2)
        for _ in 0..<3 {
            let read = [UInt32(8), UInt32(4096 + 8)].withUnsafeBufferPointer { o in
                mapping.gather(offsets: o, values: &values, stamps: &stamps)
            }
            #expect(!read)
        }
        // The first page still reads.
        let first = [UInt32(8)].withUnsafeBufferPointer { o in mapping.gather(offsets: o, values: &values, stamps: &stamps) }
        #expect(first)
        #expect(values[0] == 1)
    }

    @Test func aFileThatIsNotTheOneReadIsNotMapped() throws {
        let dir = TempDirectory("mapping"); defer { dir.remove() }
        let path = dir.path + "/counter_1.db"
        let length = try writeSlots(path, pages: 1)
        let before = try identity(path)
        try FileManager.default.removeItem(atPath: path)
        _ = try writeSlots(path, pages: 1)
        #expect(ReadMapping(path: path, identity: before, length: length) == nil)
        // Nor one shorter than asked for.
        #expect(ReadMapping(path: path, identity: try identity(path), length: length + 1) == nil)
    }

    /// The guard catches only its own reads: a SIGBUS anywhere else still ends the process,
    /// in a real child process: by the default action, or under a sanitizer by its report
    /// (the handler that was there before the guard).
    @Test func aSigbusOutsideAGuardedReadStillEndsTheProcess() throws {
        let dir = TempDirectory("mapping"); defer { dir.remove() }
        let result = try run(worker, ["mapping-sigbus", dir.path], timeout: 60)
        #expect(result.stdout.contains("caught"), "\(result.stdout) \(result.stderr)")
        #expect(result.stdout.contains("touching"))
        #expect(!result.stdout.contains("survived"))
        let sanitizerReport = result.status != 0 && result.stderr.contains("Sanitizer: BUS")
        #expect((result.signaled && result.status == 128 + SIGBUS) || sanitizerReport, "status \(result.status): \(result.stderr)")
    }
}
