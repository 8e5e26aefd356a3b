/// Turns swift-metrics labels and dimension names into valid Prometheus names.
///
/// The rules are those of swift-prometheus 2.4.1 (`PrometheusCollectorRegistry`, applied to every
/// name it is given), so that a dashboard keeps its queries when a service moves from that
/// backend to this one:
///
/// - Each character that is not allowed becomes one `_`. A character is a grapheme cluster:
///   `µs` becomes `_s`, `é` becomes `_` whether it is written as one scalar or as `e` and a
///   combining accent, and an emoji with a skin tone is one `_`.
/// - Allowed are `A`–`Z`, `a`–`z`, `_`, the digits `0`–`9` except in the first position (a
///   leading digit is replaced, not prefixed: `1st` becomes `_st`), and `:` in metric names
///   only (a `:` in a label name becomes `_`).
///
/// Where swift-prometheus lets through a name that Prometheus (and the core package) refuses,
/// this sanitizer goes further, so that every result is valid:
///
/// - An empty name becomes `_` (swift-prometheus keeps it empty).
/// - A label name that starts with `__` (reserved for Prometheus' own labels) loses its
///   leading underscores but one: `__meta` becomes `_meta`.
/// - A letter followed by combining marks that do not compose (`A` with U+20DD) is replaced
///   like any other character outside ASCII; swift-prometheus compares whole characters
///   against the range `A`…`Z` and keeps it, which gives an invalid name.
///
/// Label names that are reserved for one metric type, and names that become equal once
/// sanitized, are handled when a label set is built (``LabelSet``).
package enum PrometheusNameSanitizer {
    /// A valid metric name (`[a-zA-Z_:][a-zA-Z0-9_:]*`) made from a swift-metrics label.
    package static func metricName(_ name: String) -> String {
        sanitize(name, allowColon: true)
    }

    /// A valid label name (`[a-zA-Z_][a-zA-Z0-9_]*`, not starting with `__`) made from a
    /// swift-metrics dimension name.
    package static func labelName(_ name: String) -> String {
        var sanitized = sanitize(name, allowColon: false)
        if sanitized.utf8.starts(with: "__".utf8) {
            // Every character is ASCII here, so dropping by Character is dropping by byte.
            let underscores = sanitized.prefix { $0 == "_" }.count
            sanitized.removeFirst(underscores - 1)
        }
        return sanitized
    }

    /// Whether `byte` may stand at `position` (0 for the first) of a name.
    @inline(__always)
    private static func isAllowed(_ byte: UInt8, first: Bool, allowColon: Bool) -> Bool {
        switch byte {
        case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "_"):
            return true
        case UInt8(ascii: "0")...UInt8(ascii: "9"):
            return !first
        case UInt8(ascii: ":"):
            return allowColon
        default:
            return false
        }
    }

    private static func sanitize(_ name: String, allowColon: Bool) -> String {
        if name.isEmpty { return "_" }
        // Fast path: most labels are valid already, and are returned without a copy.
        var first = true
        var valid = true
        for byte in name.utf8 {
            if !isAllowed(byte, first: first, allowColon: allowColon) {
                valid = false
                break
            }
            first = false
        }
        if valid { return name }

        var result = ""
        result.reserveCapacity(name.utf8.count)
        first = true
        for character in name {
            // One scalar that is ASCII: judge it by its byte. Anything else (a scalar beyond
            // ASCII, a cluster of several scalars such as CR LF or a letter with a combining
            // mark) is one character that is not allowed, hence one `_`.
            let scalars = character.unicodeScalars
            if scalars.count == 1, let scalar = scalars.first, scalar.isASCII,
               isAllowed(UInt8(truncatingIfNeeded: scalar.value), first: first, allowColon: allowColon) {
                result.unicodeScalars.append(scalar)
            } else {
                result.append("_")
            }
            first = false
        }
        return result
    }
}
