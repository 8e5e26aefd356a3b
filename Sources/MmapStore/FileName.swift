/// How a gauge's values from several processes are merged: the ten modes of prometheus_client.
///
/// One enum serves the file names (`gauge_<mode>_<pid>.db`), the metric API and the merge.
/// The `live` modes differ from their plain twins only in that the files of dead processes
/// are removed (by `mark-dead`, or left out automatically when this package's lock says the
/// owner is dead).
public enum GaugeMode: String, CaseIterable, Hashable, Sendable {
    /// One series per process, labelled with `pid`; kept after the process dies.
    case all
    /// One series per process, labelled with `pid`; removed when the process dies.
    case liveall
    /// The minimum over processes.
    case min
    /// The minimum over live processes.
    case livemin
    /// The maximum over processes.
    case max
    /// The maximum over live processes.
    case livemax
    /// The sum over processes.
    case sum
    /// The sum over live processes.
    case livesum
    /// The most recently set value (by wall-clock timestamp).
    case mostrecent
    /// The most recently set value among live processes.
    case livemostrecent

    /// Whether files of this mode are removed once their process is dead.
    package var isLive: Bool {
        switch self {
        case .liveall, .livemin, .livemax, .livesum, .livemostrecent: return true
        case .all, .min, .max, .sum, .mostrecent: return false
        }
    }

    /// The mode without its `live` prefix: how values are combined.
    package var aggregation: GaugeMode {
        switch self {
        case .all, .liveall: return .all
        case .min, .livemin: return .min
        case .max, .livemax: return .max
        case .sum, .livesum: return .sum
        case .mostrecent, .livemostrecent: return .mostrecent
        }
    }

    /// Whether `set` stores the wall-clock time and increments are refused.
    package var isMostRecent: Bool { aggregation == .mostrecent }
}

/// The kind of values a metric file holds; it decides the file name's prefix.
package enum FileKind: Hashable, Sendable, CustomStringConvertible {
    /// `counter_<pid>.db`.
    case counter
    /// `histogram_<pid>.db`: `_sum` and non-cumulative `_bucket` entries.
    case histogram
    /// `summary_<pid>.db`: `_count` and `_sum` entries.
    case summary
    /// `gauge_<mode>_<pid>.db`.
    case gauge(GaugeMode)

    /// Every kind, gauges in each mode.
    package static let allKinds: [FileKind] =
        [.counter, .histogram, .summary] + GaugeMode.allCases.map { .gauge($0) }

    /// The part of the file name before the process identifier, such as `gauge_livesum`.
    package var prefix: String {
        switch self {
        case .counter: return "counter"
        case .histogram: return "histogram"
        case .summary: return "summary"
        case .gauge(let mode): return "gauge_\(mode.rawValue)"
        }
    }

    /// The prefix, as `description`.
    package var description: String { prefix }
}

/// The name of a metric file: what it holds and whose it is.
///
/// Parses and builds `counter_123.db`, `gauge_livesum_123.db`, the suffixed names used when a
/// pid is already claimed by another live process (`counter_123-1.db`), the archive files
/// written by compaction (`counter_archive.db`), and the sidecar files prometheus_client never
/// reads: native histograms (`native_123.pmh`, ``NativeHistogramFile``), metadata
/// (`meta_123.pmm`, ``MetadataFile``) and exemplars (`exemplars_123.pmx`, ``ExemplarFile``).
/// This is the only place that knows the naming scheme.
///
/// A native-histogram file is not a `*.db` file, so prometheus_client's collector, which parses
/// every `*.db` file, never sees it; it parses here with ``kind`` `.histogram` (its buckets are
/// a histogram's) and ``isNativeHistogram`` set. Code that reads `*.db` entries lists `*.db`
/// names only, as prometheus_client does.
package struct MetricFileName: Hashable, Sendable, CustomStringConvertible {
    /// The kind of values the file holds (`.histogram` for a native-histogram file).
    package var kind: FileKind
    /// The owner: a process identifier (`123`, `123-1`), or `archive`.
    package var owner: String
    /// Whether this is a native-histogram file, `native_<owner>.pmh`.
    package var isNativeHistogram: Bool
    /// Whether this is a metadata file, `meta_<owner>.pmm` (``MetadataFile``; ``kind`` is
    /// `.gauge(.all)` and means nothing there).
    package var isMetadata = false
    /// Whether this is an exemplar file, `exemplars_<owner>.pmx` (``kind`` is `.counter`).
    package var isExemplars = false
    /// Whether compaction folds files of this name into an archive: the `*.db` files and the
    /// native-histogram files; never metadata or exemplar files, which stay until `wipe`.
    package var isFoldable: Bool { !isMetadata && !isExemplars }

    /// The owner string used by compaction's archive files.
    package static let archiveOwner = "archive"
    /// The suffix of native-histogram files.
    package static let nativeHistogramSuffix = ".pmh"
    /// The suffix of metadata files.
    package static let metadataSuffix = ".pmm"
    /// The suffix of exemplar files.
    package static let exemplarsSuffix = ".pmx"

    /// Builds a name from its parts.
    package init(kind: FileKind, owner: String) {
        self.kind = kind
        self.owner = owner
        self.isNativeHistogram = false
    }

    /// The name of `owner`'s native-histogram file, `native_<owner>.pmh`.
    package init(nativeHistogramOwner owner: String) {
        self.kind = .histogram
        self.owner = owner
        self.isNativeHistogram = true
    }

    /// The name of `owner`'s metadata file, `meta_<owner>.pmm`.
    package init(metadataOwner owner: String) {
        self.kind = .gauge(.all)
        self.owner = owner
        self.isNativeHistogram = false
        self.isMetadata = true
    }

    /// The name of `owner`'s exemplar file, `exemplars_<owner>.pmx`.
    package init(exemplarsOwner owner: String) {
        self.kind = .counter
        self.owner = owner
        self.isNativeHistogram = false
        self.isExemplars = true
    }

    /// Whether this is a compaction archive rather than one process's file.
    package var isArchive: Bool { owner == Self.archiveOwner }

    /// The process id part of the owner (`123` for `123-1`), if it is numeric.
    package var pid: Int32? {
        let digits = owner.split(separator: "-", maxSplits: 1).first.map(String.init) ?? owner
        return Int32(digits)
    }

    /// The file name, such as `gauge_livesum_123.db` or `native_123.pmh`.
    package var description: String {
        stem + (isNativeHistogram ? Self.nativeHistogramSuffix : isMetadata ? Self.metadataSuffix : isExemplars ? Self.exemplarsSuffix : ".db")
    }

    /// The file name without its suffix, such as `native_123`.
    package var stem: String {
        isNativeHistogram ? "native_\(owner)" : isMetadata ? "meta_\(owner)" : isExemplars ? "exemplars_\(owner)" : "\(kind.prefix)_\(owner)"
    }

    /// Parses a file name (not a path); `nil` if it is not a metric file name.
    ///
    /// The owner may be any non-empty text without `_` or `/`, as prometheus_client allows a
    /// custom process identifier; the collector reports such names as they are.
    package init?(parsing name: String) {
        if let owner = Self.sidecarOwner(name, prefix: "native", suffix: Self.nativeHistogramSuffix) {
            self.init(nativeHistogramOwner: owner)
            return
        }
        if let owner = Self.sidecarOwner(name, prefix: "meta", suffix: Self.metadataSuffix) {
            self.init(metadataOwner: owner)
            return
        }
        if let owner = Self.sidecarOwner(name, prefix: "exemplars", suffix: Self.exemplarsSuffix) {
            self.init(exemplarsOwner: owner)
            return
        }
        if name.hasSuffix(Self.nativeHistogramSuffix) || name.hasSuffix(Self.metadataSuffix) || name.hasSuffix(Self.exemplarsSuffix) {
            return nil
        }
        guard name.hasSuffix(".db") else { return nil }
        let stem = name.dropLast(3)
        let parts = stem.split(separator: "_", omittingEmptySubsequences: false)
        let kind: FileKind
        let ownerPart: Substring
        switch parts.first {
        case "counter" where parts.count == 2: kind = .counter; ownerPart = parts[1]
        case "histogram" where parts.count == 2: kind = .histogram; ownerPart = parts[1]
        case "summary" where parts.count == 2: kind = .summary; ownerPart = parts[1]
        case "gauge" where parts.count == 3:
            guard let mode = GaugeMode(rawValue: String(parts[1])) else { return nil }
            kind = .gauge(mode); ownerPart = parts[2]
        default: return nil
        }
        guard !ownerPart.isEmpty, !ownerPart.contains("/") else { return nil }
        self.init(kind: kind, owner: String(ownerPart))
    }

    /// The owner of a sidecar file named `<prefix>_<owner><suffix>`, or nil when `name` is not
    /// one (an empty owner, or one with `_` or `/`, is not).
    private static func sidecarOwner(_ name: String, prefix: String, suffix: String) -> String? {
        guard name.hasSuffix(suffix) else { return nil }
        let parts = name.dropLast(suffix.utf8.count).split(separator: "_", omittingEmptySubsequences: false)
        guard parts.count == 2, parts[0] == prefix, !parts[1].isEmpty, !parts[1].contains("/") else { return nil }
        return String(parts[1])
    }

    /// Why a `*.db` name is not a metric file name, for error messages.
    package static func problem(with name: String) -> String {
        let stem = name.hasSuffix(".db") ? String(name.dropLast(3)) : name
        let parts = stem.split(separator: "_", omittingEmptySubsequences: false)
        guard let first = parts.first, ["counter", "histogram", "summary", "gauge"].contains(String(first)) else {
            return "unknown metric type '\(parts.first.map(String.init) ?? "")' in file name"
        }
        if first == "gauge" {
            if parts.count < 3 { return "gauge file name without a mode and owner" }
            if GaugeMode(rawValue: String(parts[1])) == nil { return "unknown gauge mode '\(parts[1])'" }
        }
        return "file name is not <type>_<pid>.db or gauge_<mode>_<pid>.db"
    }
}

extension MetricFileName {
    /// The last component of `path`: the text after its last `/` (`path` itself when it has
    /// none). The one helper for it, so that every reader names and sorts files alike.
    package static func baseName(of path: String) -> String {
        guard let slash = path.utf8.lastIndex(of: UInt8(ascii: "/")) else { return path }
        return String(path[path.utf8.index(after: slash)...])
    }

    /// Parses the file name at the end of `path`, or throws the error readers report for a
    /// `*.db` file whose name is not a metric file name (`weird_1.db`, `gauge_bogus_1.db`).
    /// - Throws: ``MetricFileError`` of kind ``MetricFileError/Kind/badName(_:)``.
    package init(validatingPath path: String) throws(MetricFileError) {
        let base = Self.baseName(of: path)
        guard let name = MetricFileName(parsing: base) else {
            throw MetricFileError(path: path, kind: .badName(Self.problem(with: base)))
        }
        self = name
    }
}

extension MetricFileName {
    /// The prefix of the names compaction gives the files it is folding or removing.
    package static let stagedPrefix = ".fold-"

    /// The name compaction gives this file while it folds or removes it,
    /// `.fold-<nonce>-<name without its suffix>` (`.fold-1f2e3d4c-counter_123`,
    /// `.fold-1f2e3d4c-native_123` for `native_123.pmh`): out of the `*.db` and `*.pmh`
    /// namespaces, so no collector lists it and no writer opens it. `nonce` is lower-case hex.
    /// Only `*.db` and native-histogram names are ever staged: ``init(parsingStaged:)`` parses
    /// those back.
    package func stagedName(nonce: String) -> String {
        Self.stagedPrefix + nonce + "-" + stem
    }

    /// Parses a name made by ``stagedName(nonce:)`` back into the file's own name; nil for
    /// anything else. The stem tells the suffix: `native_<owner>` is a native-histogram file
    /// (no `*.db` name starts with `native_`), anything else a `*.db` file.
    package init?(parsingStaged name: String) {
        guard name.hasPrefix(Self.stagedPrefix) else { return nil }
        let rest = name.dropFirst(Self.stagedPrefix.count)
        guard let dash = rest.firstIndex(of: "-") else { return nil }
        let nonce = rest[..<dash]
        guard !nonce.isEmpty, nonce.utf8.allSatisfy({ ($0 >= 0x30 && $0 <= 0x39) || ($0 >= 0x61 && $0 <= 0x66) }) else { return nil }
        let stem = String(rest[rest.index(after: dash)...])
        if let name = MetricFileName(parsing: stem + ".db") {
            self = name
        } else if let name = MetricFileName(parsing: stem + Self.nativeHistogramSuffix) {
            self = name
        } else {
            return nil
        }
    }
}
