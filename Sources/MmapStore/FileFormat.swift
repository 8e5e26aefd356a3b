/// The on-disk layout of a metric file, shared with prometheus_client 0.18 and later.
///
/// All integers are little-endian `int32`, all values little-endian IEEE-754 `float64`.
///
/// | offset            | size  | field                                                       |
/// |-------------------|-------|-------------------------------------------------------------|
/// | 0                 | 4     | `used`: bytes in use from offset 0, header included         |
/// | 4                 | 3     | marker `PMP` in files this package writes; 0 in Python's    |
/// | 7                 | 1     | format version (``FileFormat/version``); 0 in Python's      |
/// | 8                 | ...   | entries, back to back, each starting 8-byte aligned         |
///
/// Each entry, starting at offset `p`:
///
/// | offset              | size | field                                                   |
/// |---------------------|------|---------------------------------------------------------|
/// | p                   | 4    | `L`, the byte length of the key                         |
/// | p + 4               | L    | the key: JSON, see ``SeriesKey``                        |
/// | p + 4 + L           | pad  | spaces; `pad = 8 - (L + 4) % 8`, so 1...8, never 0      |
/// | p + 4 + L + pad     | 8    | the value                                               |
/// | p + 12 + L + pad    | 8    | the timestamp (UNIX seconds; 0 = never set)             |
///
/// Files start at 64 KiB and double when an entry does not fit. Bytes past `used` are zero
/// and never read. prometheus_client never reads or writes bytes 4...7, so the marker is
/// invisible to it; a reader of this package refuses a file whose marker names a version it
/// does not know instead of misreading it.
package enum FileFormat {
    /// Size of the header; the first entry starts here.
    package static let headerSize = 8
    /// Size of a new file, as in prometheus_client.
    package static let initialSize = 1 << 16
    /// The largest `used` an `int32` can express.
    package static let maximumSize = Int(Int32.max)
    /// The format version this package writes and reads.
    package static let version: UInt8 = 1
    /// Bytes 4...6 of the header in files this package writes.
    package static let marker: (UInt8, UInt8, UInt8) = (0x50, 0x4D, 0x50)  // "PMP"

    /// The padding after a key of `keyLength` bytes: 1 to 8 spaces, never 0 (Python's rule).
    @inlinable
    package static func padding(keyLength: Int) -> Int { 8 - (keyLength + 4) % 8 }

    /// The full size of an entry whose key has `keyLength` bytes.
    @inlinable
    package static func entrySize(keyLength: Int) -> Int { 4 + keyLength + padding(keyLength: keyLength) + 16 }

    /// The entry bytes for a key with value and timestamp zero.
    package static func entryBytes(key: [UInt8], value: Double = 0, timestamp: Double = 0) -> [UInt8] {
        let pad = padding(keyLength: key.count)
        var out: [UInt8] = []
        out.reserveCapacity(entrySize(keyLength: key.count))
        appendLittleEndian(UInt32(truncatingIfNeeded: key.count), to: &out)
        out.append(contentsOf: key)
        out.append(contentsOf: repeatElement(0x20, count: pad))
        appendLittleEndian(value.bitPattern, to: &out)
        appendLittleEndian(timestamp.bitPattern, to: &out)
        return out
    }

    /// The eight header bytes for a file of this package with `used` bytes in use.
    package static func headerBytes(used: Int) -> [UInt8] {
        var out: [UInt8] = []
        appendLittleEndian(UInt32(truncatingIfNeeded: used), to: &out)
        out.append(marker.0); out.append(marker.1); out.append(marker.2); out.append(version)
        return out
    }

    static func appendLittleEndian<T: FixedWidthInteger>(_ v: T, to out: inout [UInt8]) {
        var le = v.littleEndian
        withUnsafeBytes(of: &le) { out.append(contentsOf: $0) }
    }

    /// Who wrote a file, from its header marker.
    package enum Writer: Hashable, Sendable, CustomStringConvertible {
        /// Bytes 4...7 are zero: prometheus_client (or an older tool) wrote it; it holds no lock.
        case python
        /// This package wrote it, in the given format version.
        case swift(version: UInt8)

        /// `python` or `swift v1`.
        package var description: String {
            switch self {
            case .python: return "python"
            case .swift(let v): return "swift v\(v)"
            }
        }
    }

    /// Reads the marker in header bytes 4...7.
    /// - Returns: the writer, or `nil` when the bytes are neither zero nor this package's marker.
    package static func writer(marker b: (UInt8, UInt8, UInt8, UInt8)) -> Writer? {
        if b.0 == 0 && b.1 == 0 && b.2 == 0 && b.3 == 0 { return .python }
        if b.0 == marker.0 && b.1 == marker.1 && b.2 == marker.2 { return .swift(version: b.3) }
        return nil
    }
}
