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
/// | `t` (0x74) | a type name (`info` or `stateset`), 0x00, the family name of the `*.db` keys (UTF-8) | the gauge family of that name is an Info (`<name>_info`) or an Enum (`<name>`) |
///
/// Value and timestamp are written as 0 and not read. A reader ignores entries whose tag it
/// does not know (later versions may add some) and rejects, naming the file and the offset, a
/// key without the tag structure or a `t` entry with an unknown type or an empty name.
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

    /// The family types recorded in the file at `path`.
    /// - Returns: per family name, its type, and the number of entries read.
    /// - Throws: ``MetricFileError`` naming the file and the problem (unreadable, truncated,
    ///   a malformed key).
    package static func readTypes(path: String, reader: inout MetricFileReader)
        throws(MetricFileError) -> (types: [(family: String, type: FamilyType)], entries: Int) {
        let file = try reader.load(path: path)
        var types: [(family: String, type: FamilyType)] = []
        var entries = 0
        var problem: MetricFileError?
        try file.forEachEntry { entry in
            guard problem == nil else { return }
            entries += 1
            func fail(_ reason: String) {
                problem = MetricFileError(path: path, kind: .invalidKey(offset: entry.offset, KeyDecodingError(offset: 0, reason: reason)))
            }
            let key = entry.key
            guard key.count >= 2, key[1] == 0 else { return fail("metadata key without a tag") }
            guard key[0] == typeTag else { return }
            let data = key[2...]
            guard let zero = data.firstIndex(of: 0) else { return fail("type entry without a family name") }
            guard let type = FamilyType(rawValue: String(decoding: data[..<zero], as: UTF8.self)) else {
                return fail("unknown family type '\(String(decoding: data[..<zero], as: UTF8.self))'")
            }
            let nameBytes = data[(zero + 1)...]
            guard !nameBytes.isEmpty, let name = String(validating: nameBytes, as: UTF8.self) else {
                return fail("type entry with an empty or invalid family name")
            }
            types.append((name, type))
        }
        if let problem { throw problem }
        return (types, entries)
    }
}
