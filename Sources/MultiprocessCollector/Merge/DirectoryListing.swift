import SystemCalls
import MmapStore

/// One listing of a multiprocess directory, split by kind of file, each list sorted by name
/// (byte order, as both collectors merge) and given as paths: a scrape reads the directory
/// once, whatever sidecar files it merges.
package struct DirectoryListing: Sendable {
    /// The `*.db` files (prometheus_client's format; the only ones its collector reads).
    package var metricFiles: [String] = []
    /// The native-histogram files, `native_<owner>.pmh` (``NativeHistogramFile``).
    package var nativeHistogramFiles: [String] = []
    /// The metadata files, `meta_<owner>.pmm` (``MetadataFile``).
    package var metadataFiles: [String] = []
    /// The exemplar files, `exemplars_<owner>.pmx` (``ExemplarFile``).
    package var exemplarFiles: [String] = []

    /// Lists `directory`. Other names (the store's `.tmp-*` files, a compaction's hidden
    /// sources and journal) are left out, as is any sidecar name starting with `.`; every
    /// `*.db` name and any other name with a sidecar suffix is kept, so that its reader
    /// reports it when it is malformed.
    package static func read(_ directory: String) -> Result<DirectoryListing, MetricFileError> {
        var names: [String]
        do {
            names = try Sys.listDirectory(directory)
        } catch {
            return .failure(MetricFileError(path: directory, kind: .system(error)))
        }
        names.sort { $0.utf8.lexicographicallyPrecedes($1.utf8) }
        let dir = directory.hasSuffix("/") ? String(directory.dropLast()) : directory
        var listing = DirectoryListing()
        for name in names {
            let path = dir + "/" + name
            if name.hasSuffix(".db") {
                listing.metricFiles.append(path)
            } else if name.hasPrefix(".") {
                continue
            } else if name.hasSuffix(MetricFileName.nativeHistogramSuffix) {
                listing.nativeHistogramFiles.append(path)
            } else if name.hasSuffix(MetricFileName.metadataSuffix) {
                listing.metadataFiles.append(path)
            } else if name.hasSuffix(MetricFileName.exemplarsSuffix) {
                listing.exemplarFiles.append(path)
            }
        }
        return .success(listing)
    }
}
