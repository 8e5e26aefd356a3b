/// How metric and label names outside the legacy character set are written, as negotiated by
/// the `escaping=` parameter of the `Accept` header.
///
/// Legacy names (`[a-zA-Z_:][a-zA-Z0-9_:]*` for metrics, `[a-zA-Z_][a-zA-Z0-9_]*` for labels)
/// are written unchanged by every scheme except ``dots``. prometheus_client 0.26.0 accepts
/// UTF-8 names by default, so files written by Python workers can hold other names; they are
/// escaped here exactly as prometheus_client's `escape_metric_name` and `escape_label_name` do
/// (which agree with Go's `model.EscapeName`).
public enum NameEscaping: String, Sendable, Hashable, CaseIterable {
    /// Every character outside the legacy set becomes `_` (the default).
    case underscores
    /// Names outside the legacy set are written in double quotes, with `\`, `"` and newline
    /// escaped.
    case allowUTF8 = "allow-utf-8"
    /// `_` becomes `__`, `.` becomes `_dot_`, other characters outside the legacy set `__`;
    /// applied to every name, legacy or not.
    case dots
    /// Names outside the legacy set become `U__` followed by the name with `_` doubled and
    /// other characters outside the set written as `_<hex code point>_`.
    case values
}

/// Name checks and escaping, writing bytes.
enum ExpositionNames {
    /// Whether `name` matches `^[a-zA-Z_:][a-zA-Z0-9_:]*$` (`metric: true`) or
    /// `^[a-zA-Z_][a-zA-Z0-9_]*$` (`metric: false`).
    @inline(__always)
    static func isLegacy(_ name: String, metric: Bool) -> Bool {
        name.withUTF8Bytes { isLegacy(bytes: $0, metric: metric) }
    }

    @inline(__always)
    static func isLegacy(bytes: UnsafeRawBufferPointer, metric: Bool) -> Bool {
        guard let first = bytes.first, isLegacyByte(first, first: true, metric: metric) else { return false }
        let outside: ExpositionBytes.ByteClass = metric ? .outsideMetricName : .outsideLabelName
        var classes: UInt8 = 0
        for b in bytes { classes |= ExpositionBytes.classOf(b) }
        return !ExpositionBytes.ByteClass(rawValue: classes).contains(outside)
    }

    @inline(__always)
    static func isLegacyByte(_ b: UInt8, first: Bool, metric: Bool) -> Bool {
        switch b {
        case 0x61...0x7A, 0x41...0x5A, 0x5F: return true  // a-z A-Z _
        case 0x30...0x39: return !first  // 0-9
        case 0x3A: return metric  // :
        default: return false
        }
    }

    /// Appends `name` as prometheus_client's `escape_metric_name` (`metric: true`) or
    /// `escape_label_name` (`metric: false`) writes it under `escaping`.
    @inline(__always)
    static func write(_ name: String, metric: Bool, escaping: NameEscaping, to buffer: inout ByteWriter) {
        if escaping != .dots && writeIfLegacy(name, metric: metric, to: &buffer) { return }
        writeEscaped(name, metric: metric, escaping: escaping, to: &buffer)
    }

    /// Appends label name `name` as prometheus_client's text and OpenMetrics writers do. Their
    /// legacy label names exclude the reserved `__` prefix (`_is_valid_legacy_labelname`), so
    /// under `allow-utf-8` such a name is quoted and under `values` escaped; under
    /// `underscores` its characters are all kept, the same bytes as ``write(_:metric:escaping:to:)``.
    /// (Protobuf keeps client_golang's rule, in which `__` names are legacy.)
    @inline(__always)
    static func writeTextLabelName(_ name: String, escaping: NameEscaping, to buffer: inout ByteWriter) {
        if escaping == .allowUTF8 || escaping == .values, isReserved(name) {
            writeEscaped(name, metric: false, escaping: escaping, to: &buffer)
            return
        }
        write(name, metric: false, escaping: escaping, to: &buffer)
    }

    /// Whether `name` starts with `__`.
    @inline(__always)
    static func isReserved(_ name: String) -> Bool {
        name.withUTF8Bytes { $0.count >= 2 && $0[0] == 0x5F && $0[1] == 0x5F }
    }

    /// Writes `name` if it is a legacy name and returns true; otherwise writes nothing and
    /// returns false. One pass copies the bytes and classifies them.
    @inline(__always)
    static func writeIfLegacy(_ name: String, metric: Bool, to buffer: inout ByteWriter) -> Bool {
        let start = buffer.count
        let legacy = name.withUTF8Bytes { bytes in
            guard let first = bytes.first, isLegacyByte(first, first: true, metric: metric) else { return false }
            let outside: ExpositionBytes.ByteClass = metric ? .outsideMetricName : .outsideLabelName
            return !buffer.writeClassifying(bytes).contains(outside)
        }
        if !legacy { buffer.rewind(to: start) }
        return legacy
    }

    /// The escaping of a name that is not written as it is: any name under ``NameEscaping/dots``,
    /// a non-legacy name under the other schemes.
    @inline(never)
    private static func writeEscaped(_ name: String, metric: Bool, escaping: NameEscaping, to buffer: inout ByteWriter) {
        if name.isEmpty { return }
        switch escaping {
        case .allowUTF8:
            buffer.write(0x22)
            buffer.writeEscaped(name, quote: true)
            buffer.write(0x22)
        case .underscores:
            for (i, scalar) in name.unicodeScalars.enumerated() {
                if isLegacyScalar(scalar, first: i == 0, metric: metric) {
                    buffer.write(UInt8(truncatingIfNeeded: scalar.value))
                } else {
                    buffer.write(0x5F)
                }
            }
        case .dots:
            for (i, scalar) in name.unicodeScalars.enumerated() {
                if scalar == "_" {
                    buffer.write(0x5F, 0x5F)
                } else if scalar == "." {
                    buffer.write("_dot_" as StaticString)
                } else if isLegacyScalar(scalar, first: i == 0, metric: metric) {
                    buffer.write(UInt8(truncatingIfNeeded: scalar.value))
                } else {
                    buffer.write(0x5F, 0x5F)
                }
            }
        case .values:
            buffer.write("U__" as StaticString)
            for (i, scalar) in name.unicodeScalars.enumerated() {
                if scalar == "_" {
                    buffer.write(0x5F, 0x5F)
                } else if isLegacyScalar(scalar, first: i == 0, metric: metric) {
                    buffer.write(UInt8(truncatingIfNeeded: scalar.value))
                } else {
                    // Python writes format(ord(c), 'x'): lower-case hex, no padding. (Its
                    // `_FFFD_` case is for lone surrogates, which a Swift String cannot hold.)
                    buffer.write(0x5F)
                    buffer.write(String(scalar.value, radix: 16))
                    buffer.write(0x5F)
                }
            }
        }
    }

    @inline(__always)
    private static func isLegacyScalar(_ scalar: Unicode.Scalar, first: Bool, metric: Bool) -> Bool {
        scalar.isASCII && isLegacyByte(UInt8(scalar.value), first: first, metric: metric)
    }
}
