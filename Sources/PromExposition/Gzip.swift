import CZlib

/// gzip compression of an exposition body (RFC 1952), through the system's zlib, and the
/// `Accept-Encoding` check that decides whether a scrape gets it.
///
/// Prometheus sends `Accept-Encoding: gzip` on every scrape; a large directory's exposition
/// compresses about tenfold, which matters more than the milliseconds spent compressing when
/// the scraper is across a network.
package enum Gzip {
    /// Whether an `Accept-Encoding` header value accepts gzip: a `gzip` (or `x-gzip`) or `*`
    /// entry whose `q` weight is not zero (RFC 9110, section 12.5.3). Names are
    /// case-insensitive; a missing header accepts nothing.
    /// - Parameter acceptEncoding: the header's value, or nil when the request had none.
    /// - Returns: whether the response may be gzip-compressed.
    package static func isAccepted(byAcceptEncoding acceptEncoding: String?) -> Bool {
        guard let acceptEncoding else { return false }
        var gzipWeight: Double?
        var starWeight: Double?
        for entry in acceptEncoding.split(separator: ",") {
            let parts = entry.split(separator: ";")
            guard let first = parts.first else { continue }
            let coding = first.trimmingSpaces().lowercased()
            var weight = 1.0
            for parameter in parts.dropFirst() {
                let p = parameter.trimmingSpaces().lowercased()
                if p.hasPrefix("q="), let q = Double(p.dropFirst(2)) { weight = q }
            }
            switch coding {
            case "gzip", "x-gzip": gzipWeight = max(gzipWeight ?? 0, weight)
            case "*": starWeight = weight
            default: break
            }
        }
        // An explicit gzip entry wins over `*` (`gzip;q=0, *` refuses gzip).
        return (gzipWeight ?? starWeight ?? 0) > 0
    }

    /// Compresses `bytes` into a gzip member.
    /// - Parameters:
    ///   - bytes: the data.
    ///   - level: zlib's level, 1 (fastest, the default: a scrape's latency matters more than
    ///     its last bytes) to 9 (smallest).
    /// - Returns: the gzip stream (header, deflate data, CRC-32 and length trailer).
    package static func compress(_ bytes: [UInt8], level: Int32 = 1) -> [UInt8] {
        var stream = z_stream()
        // windowBits 15 + 16: a gzip wrapper instead of zlib's; memLevel 8 is zlib's default.
        let status = deflateInit2_(&stream, level, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY,
                                   zlibVersion(), Int32(MemoryLayout<z_stream>.size))
        // Only a bad level or no memory fail here: both are bugs or a dying process.
        guard status == Z_OK else { fatalError("zlib deflateInit2 failed with status \(status)") }
        defer { deflateEnd(&stream) }
        var output = [UInt8](repeating: 0, count: Int(deflateBound(&stream, uLong(bytes.count))))
        let produced = bytes.withUnsafeBufferPointer { input in
            output.withUnsafeMutableBufferPointer { out -> Int in
                stream.next_in = UnsafeMutablePointer(mutating: input.baseAddress)
                stream.avail_in = uInt(input.count)
                stream.next_out = out.baseAddress
                stream.avail_out = uInt(out.count)
                // deflateBound is an upper bound for a single Z_FINISH call.
                let r = deflate(&stream, Z_FINISH)
                guard r == Z_STREAM_END else { fatalError("zlib deflate did not finish: status \(r)") }
                return Int(stream.total_out)
            }
        }
        output.removeSubrange(produced...)
        return output
    }
}

extension Substring {
    fileprivate func trimmingSpaces() -> Substring {
        var s = self
        while let f = s.first, f == " " || f == "\t" { s.removeFirst() }
        while let l = s.last, l == " " || l == "\t" { s.removeLast() }
        return s
    }
}
