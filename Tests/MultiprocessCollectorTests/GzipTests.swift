// gzip for scrapes: the Accept-Encoding rule (RFC 9110, section 12.5.3) and bytes that an
// independent decoder (Python's gzip module) turns back into the input.
import Foundation
import PromExposition
import Testing
import TestSupport

@Suite("Gzip")
struct GzipTests {
    @Test(arguments: [
        ("gzip", true), ("GZIP", true), ("x-gzip", true), ("br, gzip;q=0.5", true), ("gzip, deflate", true),
        ("*", true), ("deflate, *;q=0.1", true), ("gzip;q=0", false), ("gzip; q=0.0", false),
        ("gzip;q=0, *", false), ("*;q=0", false), ("deflate", false), ("identity", false), ("", false),
    ])
    func acceptEncodingFollowsTheRFC(header: String, accepted: Bool) {
        #expect(Gzip.isAccepted(byAcceptEncoding: header) == accepted, "\(header)")
    }

    @Test func noHeaderMeansNoCompression() {
        #expect(!Gzip.isAccepted(byAcceptEncoding: nil))
    }

    @Test(arguments: [0, 1, 4096, 1 << 20])
    func pythonsGzipModuleDecompressesWhatWeWrite(size: Int) throws {
        let dir = TempDirectory()
        defer { dir.remove() }
        // Exposition-like text, so that it compresses as a scrape would.
        var text = ""
        var i = 0
        while text.utf8.count < size {
            text += "http_requests_total{route=\"/api/\(i % 97)\",status=\"\(200 + i % 5)\"} \(i * 7).0\n"
            i += 1
        }
        let input = Array(text.utf8.prefix(size))
        let compressed = Gzip.compress(input)
        #expect(Array(compressed.prefix(3)) == [0x1f, 0x8b, 0x08], "gzip magic and deflate method")
        try Data(input).write(to: URL(fileURLWithPath: dir.file("plain")))
        try Data(compressed).write(to: URL(fileURLWithPath: dir.file("plain.gz")))
        let python = try ExternalTool.python.path()
        let check = try run(python, ["-c", """
            import gzip, sys
            plain = open(sys.argv[1], 'rb').read()
            out = gzip.decompress(open(sys.argv[2], 'rb').read())
            print('ok' if out == plain else 'differs: %d vs %d bytes' % (len(out), len(plain)))
            """, dir.file("plain"), dir.file("plain.gz")])
        #expect(check.status == 0, "\(check.stderr)")
        #expect(check.stdout == "ok\n")
        if size >= 4096 { #expect(compressed.count * 4 < input.count, "exposition text compresses at least fourfold") }
    }
}
