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
        isLegacy(bytes: name.utf8.span, metric: metric)
    }

    @inline(__always)
    static func isLegacy(bytes: Span<UInt8>, metric: Bool) -> Bool {
        guard !bytes.isEmpty, isLegacyByte(bytes[unchecked: 0], first: true, metric: metric) else { return false }
        for i in 1 ..< bytes.count where !isLegacyByte(bytes[unchecked: i], first: false, metric: metric) {
            return false
        }
        return true
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
    static func write(_ name: String, metric: Bool, escaping: NameEscaping, to buffer: inout ByteWriter) {
        let bytes = name.utf8.span
        if escaping != .dots && isLegacy(bytes: bytes, metric: metric) {
            buffer.write(bytes)
            return
        }
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
