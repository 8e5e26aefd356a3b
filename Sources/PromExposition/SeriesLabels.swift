import MmapStore
import PromMetrics

/// Label comparisons by bytes, for grouping a family's flat samples into series.
///
/// A histogram's `_bucket` samples carry `le` and a summary's quantile samples carry
/// `quantile` on top of the series' labels; comparisons can leave that one label out.
/// Everything compares UTF-8 bytes, never `String` equality, which equates canonically
/// equivalent Unicode that Prometheus treats as different label values.
enum SeriesLabels {
    /// Whether `a` and `b` have the same UTF-8 bytes.
    @inline(__always)
    static func bytesEqual(_ a: String, _ b: String) -> Bool {
        a.withUTF8Bytes { x in
            b.withUTF8Bytes { y in
                guard x.count == y.count else { return false }
                // The same storage (a name or value kept from scrape to scrape).
                if x.baseAddress == y.baseAddress { return true }
                for i in 0 ..< x.count where x[i] != y[i] { return false }
                return true
            }
        }
    }

    /// Whether `a` and `b` are the same value bit for bit: the same small string, or the same
    /// storage of a large one; then their bytes are equal. False says nothing (compare the
    /// bytes). Cheaper than the look at the storage in `bytesEqual`, for the exposition
    /// cache's comparison of every sample name with the last scrape's.
    @inline(__always)
    static func identical(_ a: String, _ b: String) -> Bool {
        // A String is two words on the 64-bit platforms this package builds for.
        guard MemoryLayout<String>.size == 16 else { return false }
        return unsafeBitCast(a, to: (UInt64, UInt64).self) == unsafeBitCast(b, to: (UInt64, UInt64).self)
    }

    /// Whether `a` and `b` share their storage (then they are equal); false says nothing.
    @inline(__always)
    static func identical(_ a: [Label], _ b: [Label]) -> Bool {
        unsafeBitCast(a, to: UInt.self) == unsafeBitCast(b, to: UInt.self)
    }

    /// Whether `a` and `b` are the same labels in the same order, by bytes.
    @inline(__always)
    static func bytesEqual(_ a: [Label], _ b: [Label]) -> Bool {
        a.withUnsafeBufferPointer { x in
            b.withUnsafeBufferPointer { y in
                guard x.count == y.count else { return false }
                // The same storage: an array the merge keeps between scrapes, never mutated
                // while shared.
                if x.baseAddress == y.baseAddress { return true }
                for i in x.indices where !(bytesEqual(x[i].name, y[i].name) && bytesEqual(x[i].value, y[i].value)) {
                    return false
                }
                return true
            }
        }
    }

    /// Whether `label` is named exactly `name`.
    @inline(__always)
    static func isNamed(_ label: Label, _ name: StaticString) -> Bool {
        label.name.withUTF8Bytes { bytes in
            guard bytes.count == name.utf8CodeUnitCount else { return false }
            let literal = name.utf8Start
            for i in 0 ..< bytes.count where bytes[i] != literal[i] { return false }
            return true
        }
    }

    /// Whether `a` and `b` list the same labels in the same order once every label named
    /// `excluding` is left out.
    @inline(__always)
    static func equal(_ a: [Label], _ b: [Label], excluding: StaticString?) -> Bool {
        // Through unsafe buffers: indexing the arrays retained and released both strings of
        // every label read (this runs once per sample of a histogram or summary in protobuf).
        a.withUnsafeBufferPointer { a in
            b.withUnsafeBufferPointer { b in
                var i = 0, j = 0
                while true {
                    if let excluding {
                        while i < a.count && isNamed(a[i], excluding) { i += 1 }
                        while j < b.count && isNamed(b[j], excluding) { j += 1 }
                    }
                    if i == a.count || j == b.count { return i == a.count && j == b.count }
                    if !bytesEqual(a[i].name, b[j].name) || !bytesEqual(a[i].value, b[j].value) { return false }
                    i += 1
                    j += 1
                }
            }
        }
    }

    /// A hashable identity of the label set, independent of label order: the labels sorted by
    /// name, each as name, 0xFF, value, 0xFF (a byte UTF-8 never contains).
    static func key(_ labels: [Label], excluding: StaticString?) -> [UInt8] {
        let kept = labels.filter { label in excluding.map { !isNamed(label, $0) } ?? true }
            .sorted { Exposition.nameLess($0.name, $1.name) }
        var key: [UInt8] = []
        for label in kept {
            key.append(contentsOf: label.name.utf8)
            key.append(0xFF)
            key.append(contentsOf: label.value.utf8)
            key.append(0xFF)
        }
        return key
    }
}
