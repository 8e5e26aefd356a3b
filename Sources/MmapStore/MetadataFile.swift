/// What one process says about its series beyond prometheus_client's format: the file
/// `meta_<pid>.pmm` and its entries (design decision 15: it is not a `*.db` file, so
/// prometheus_client's collector never reads it).
///
/// The file has the layout of a metric file (``FileFormat``: header, then entries of a key,
/// padding, an 8-byte value and an 8-byte timestamp), claimed, locked and grown like the
/// process's other files. Only the key carries meaning, so an entry re-created at zero after a
/// fork says the same thing. Each key is a tag byte, a zero byte, and the tag's data:
///
/// | tag | data | meaning |
/// | --- | --- | --- |
/// | `t` (0x74) | a type name (`info` or `stateset`), 0x00, the family name of the `*.db` keys (UTF-8) | the gauge family of that name is an Info (`<name>_info`) or an Enum (`<name>`); value and timestamp 0, not read |
/// | `c` (0x63) | the key JSON (``SeriesKey``) of family name, empty sample name, the series' labels (no `le`), empty help | the value is the Unix time in seconds at which this process created the series of that counter, histogram or summary; 0 when not known (an entry re-created after a fork) |
///
/// A reader ignores entries whose tag it does not know (later versions may add some) and
/// rejects, naming the file and the offset, a key without the tag structure, a `t` entry with
/// an unknown type or an empty name, or a `c` entry whose key is not a JSON array or whose
/// value is negative or not finite. (A `c` key is compared by its bytes with the keys of the
/// merged series, never decoded: one that matches no series is unused.)
package enum MetadataFile {
    /// The family types a metadata file can record.
    package enum FamilyType: String, Hashable, Sendable, CaseIterable {
        /// An Info: a gauge family `<name>_info` whose samples are `<name>_info`.
        case info
        /// An Enum: a gauge family `<name>` with one series per state, labelled `<name>`.
        case stateset
    }

    private static let typeTag = UInt8(ascii: "t")

    /// The key recording that the gauge family `family` (as named in the `*.db` keys) is of
    /// type `type`.
    package static func typeKey(family: String, type: FamilyType) -> [UInt8] {
        [typeTag, 0] + Array(type.rawValue.utf8) + [0] + Array(family.utf8)
    }

    private static let createdTag = UInt8(ascii: "c")

    /// The key recording when this process created the series `labels` of `family`.
    package static func createdKey(family: String, labels: [Label]) -> [UInt8] {
        [createdTag, 0] + SeriesKey(family: family, sample: "", labels: labels, help: "").encoded()
    }

    /// What one metadata file says, besides the creation times.
    package struct Contents: Sendable {
        /// Per family name, its type.
        package var types: [(family: String, type: FamilyType)] = []
        /// Entries read.
        package var entries = 0
    }

    /// Reads the metadata file at `path`.
    /// - Parameters:
    ///   - path: the file.
    ///   - reader: the reader, reused across files.
    ///   - created: called for each creation time above 0 with the series' key JSON (the key of
    ///     ``createdKey(family:labels:)`` without its tag; valid during the call) and the time.
    ///     Called before the whole file is checked: a caller keeps what it was given only when
    ///     `read` does not throw.
    /// - Throws: ``MetricFileError`` naming the file and the problem (unreadable, truncated,
    ///   a malformed key or value).
    package static func read(path: String, reader: inout MetricFileReader,
                             created: (UnsafeRawBufferPointer, Double) -> Void) throws(MetricFileError) -> Contents {
        let file = try reader.load(path: path)
        var contents = Contents()
        var problem: MetricFileError?
        try file.forEachEntry { entry in
            guard problem == nil else { return }
            contents.entries += 1
            if let reason = Self.take(entry, into: &contents, created: created) {
                problem = MetricFileError(path: path, kind: .invalidKey(offset: entry.offset, KeyDecodingError(offset: 0, reason: reason)))
            }
        }
        if let problem { throw problem }
        return contents
    }

    /// Checks one entry and takes what it says; returns why it is bad, if it is. A function
    /// of its own (no closure context per entry): a scrape reads one entry per series and
    /// process.
    @inline(__always)
    private static func take(_ entry: RawEntry, into contents: inout Contents,
                             created: (UnsafeRawBufferPointer, Double) -> Void) -> String? {
        let key = entry.key
        guard key.count >= 2, key[1] == 0 else { return "metadata key without a tag" }
        if key[0] == createdTag {
            let json = UnsafeRawBufferPointer(rebasing: key[2...])
            guard json.first == UInt8(ascii: "["), json.last == UInt8(ascii: "]") else { return "creation entry without a series key" }
            guard entry.value >= 0, entry.value.isFinite else { return "creation time \(entry.value)" }
            if entry.value > 0 { created(json, entry.value) }
            return nil
        }
        guard key[0] == typeTag else { return nil }
        let data = key[2...]
        guard let zero = data.firstIndex(of: 0) else { return "type entry without a family name" }
        guard let type = FamilyType(rawValue: String(decoding: data[..<zero], as: UTF8.self)) else {
            return "unknown family type '\(String(decoding: data[..<zero], as: UTF8.self))'"
        }
        let nameBytes = data[(zero + 1)...]
        guard !nameBytes.isEmpty, let name = String(validating: nameBytes, as: UTF8.self) else {
            return "type entry with an empty or invalid family name"
        }
        contents.types.append((name, type))
        return nil
    }
}
