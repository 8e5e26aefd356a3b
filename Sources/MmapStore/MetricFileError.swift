import SystemCalls
/// A metric file that cannot be read, naming the file and the problem.
public struct MetricFileError: Error, Hashable, Sendable, CustomStringConvertible {
    /// What is wrong with a file.
    package enum Kind: Hashable, Sendable {
        /// The file has no bytes at all.
        case empty
        /// The file is shorter than its header or its `used` field says.
        case truncated(size: Int, needed: Int)
        /// The header's `used` field is impossible (below 8 and not 0, or beyond 2 GiB).
        case invalidUsed(Int)
        /// Header bytes 4...7 are neither zero (Python) nor this package's marker.
        case unknownMarker
        /// The file was written by a version of the format this reader does not know.
        case unknownVersion(UInt8)
        /// An entry's length field points outside the bytes in use.
        case entryOutOfBounds(offset: Int, keyLength: Int)
        /// An entry's key is not valid.
        case invalidKey(offset: Int, KeyDecodingError)
        /// The file name is not `<type>_<pid>.db` or `gauge_<mode>_<pid>.db`.
        case badName(String)
        /// The path is a symbolic link, which is never followed.
        case symlink
        /// The path is not a regular file.
        case notRegularFile
        /// The file has more than one name (a hard link): its data may be shared with a file
        /// outside the directory, so it is neither read nor written.
        case hardLink(links: UInt64)
        /// The file vanished between listing the directory and reading it.
        case vanished
        /// A system call failed.
        case system(SystemError)
    }

    /// The file's path.
    public var path: String
    /// What is wrong.
    package var kind: Kind

    /// Creates an error.
    package init(path: String, kind: Kind) {
        self.path = path
        self.kind = kind
    }

    /// A short machine-friendly reason, used as a self-metric label.
    package enum ReasonCode: String, CaseIterable, Sendable {
        case badName = "bad_name", empty, entryOutOfBounds = "entry_out_of_bounds", hardLink = "hard_link", invalidHeader = "invalid_header"
        case invalidKey = "invalid_key", notRegularFile = "not_regular_file", symlink, systemError = "system_error"
        case truncated, unknownMarker = "unknown_marker", unknownVersion = "unknown_version", vanished
    }

    /// The reason as a ``ReasonCode``.
    package var reasonCode: ReasonCode {
        switch kind {
        case .empty: return .empty
        case .truncated: return .truncated
        case .invalidUsed: return .invalidHeader
        case .unknownMarker: return .unknownMarker
        case .unknownVersion: return .unknownVersion
        case .entryOutOfBounds: return .entryOutOfBounds
        case .invalidKey: return .invalidKey
        case .badName: return .badName
        case .symlink: return .symlink
        case .notRegularFile: return .notRegularFile
        case .hardLink: return .hardLink
        case .vanished: return .vanished
        case .system: return .systemError
        }
    }

    /// The reason in words.
    public var reason: String {
        switch kind {
        case .empty: return "file is empty (0 bytes)"
        case .truncated(let size, let needed): return "file is truncated: \(size) bytes, header says \(needed)"
        case .invalidUsed(let used): return "invalid header: used=\(used)"
        case .unknownMarker: return "unknown header marker in bytes 4..7 (not a metric file of a known writer)"
        case .unknownVersion(let v): return "unknown format version \(v) (this reader knows version \(FileFormat.version))"
        case .entryOutOfBounds(let offset, let length):
            return "entry at offset \(offset) with key length \(length) runs past the bytes in use"
        case .invalidKey(let offset, let e): return "entry at offset \(offset): \(e)"
        case .badName(let why): return why
        case .symlink: return "is a symbolic link (not followed)"
        case .notRegularFile: return "is not a regular file"
        case .hardLink(let links): return "is a hard link (\(links) names share its data; not read)"
        case .vanished: return "vanished while being read"
        case .system(let e): return e.description
        }
    }

    /// `path: reason`.
    public var description: String { "\(path): \(reason)" }
}
