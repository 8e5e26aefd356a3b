/// The one float formatter of the package: prometheus_client's `floatToGoString`.
///
/// Exposition values and histogram `le` labels must be spelled exactly as prometheus_client
/// spells them, or a series written by Python and the same series written by Swift would be
/// two series. prometheus_client 0.26.0 (`utils.py`) does:
///
/// ```python
/// def floatToGoString(d):
///     d = float(d)
///     if d == INF: return '+Inf'
///     elif d == MINUS_INF: return '-Inf'
///     elif math.isnan(d): return 'NaN'
///     else:
///         s = repr(d)
///         dot = s.find('.')
///         if d > 0 and dot > 6:
///             mantissa = f'{s[0]}.{s[1:dot]}{s[dot + 1:]}'.rstrip('0.')
///             return f'{mantissa}e+{dot - 1:02d}'
///         return s
/// ```
///
/// So it is Python's `repr` (the shortest digits that round-trip; fixed notation while the
/// decimal exponent is in -4 ..< 16, `1e-05` and `1e+16` style outside; `.0` on integers),
/// except that positive numbers of 1,000,000 and more written in fixed notation switch to
/// Go's exponent form: `1e+06`, `1.5e+06`, `1.234567e+06`.
///
/// ```swift
/// GoFloat.format(1_000_000)   // "1e+06"
/// GoFloat.format(0.005)       // "0.005"
/// GoFloat.format(-.infinity)  // "-Inf"
/// ```
public enum GoFloat {
    /// Formats `value` as prometheus_client's `floatToGoString` does.
    /// - Parameter value: Any double, including infinities, NaN and `-0.0`.
    /// - Returns: `+Inf`, `-Inf`, `NaN`, or Python's `repr` with Go's exponent rule.
    public static func format(_ value: Double) -> String {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(24)
        append(value, to: &bytes)
        return String(decoding: bytes, as: UTF8.self)
    }

    /// Appends the bytes of ``format(_:)`` to `buffer`, without creating a `String`.
    /// - Parameters:
    ///   - value: The value to format.
    ///   - buffer: The buffer the ASCII bytes are appended to.
    public static func append(_ value: Double, to buffer: inout [UInt8]) {
        if value.isNaN {
            buffer.append(contentsOf: [0x4E, 0x61, 0x4E])  // NaN
            return
        }
        if value.isInfinite {
            buffer.append(value > 0 ? 0x2B : 0x2D)  // + or -
            buffer.append(contentsOf: [0x49, 0x6E, 0x66])  // Inf
            return
        }
        let magnitude = value.magnitude
        // Fast path for integers below 2^53: every one of them is a double of its own, so its
        // shortest round-trip digits are its decimal digits (trailing zeros aside). Counters,
        // bucket counts and most gauges take this path.
        if magnitude < 9_007_199_254_740_992, magnitude.rounded(.towardZero) == magnitude {
            appendInteger(UInt64(magnitude), negative: value.sign == .minus, to: &buffer)
            return
        }
        appendShortest(value, to: &buffer)
    }

    private static let zero: UInt8 = 0x30
    private static let dot: UInt8 = 0x2E

    private static func appendInteger(_ n: UInt64, negative: Bool, to buffer: inout [UInt8]) {
        var digits: (UInt64, UInt64) = (0, 0)  // up to 16 digits, 8 per word (most significant first)
        var count = 0
        withUnsafeMutableBytes(of: &digits) { raw in
            // Write digits backwards into a 16-byte scratch area.
            var m = n
            var index = 16
            repeat {
                index -= 1
                raw[index] = zero &+ UInt8(truncatingIfNeeded: m % 10)
                m /= 10
            } while m != 0
            count = 16 - index
            let d = UnsafeRawBufferPointer(rebasing: raw[index..<16])
            emit(digits: d, decimalPoint: count, negative: negative, to: &buffer)
        }
    }

    private static func appendShortest(_ value: Double, to buffer: inout [UInt8]) {
        // Swift's `description` is the shortest round-trip representation (SwiftDtoa), the
        // same digits as Python's repr (checked against Python on random doubles in the
        // tests); only its layout differs, so take the digits and exponent out of it and lay
        // them out as Python does. Descriptions of up to 15 bytes are small strings, with no
        // heap allocation.
        let text = value.description
        withUnsafeTemporaryAllocation(of: UInt8.self, capacity: 32) { scratch in
            var count = 0  // significant digits collected
            var pointPosition = 0  // digits seen before '.', counting leading zeros
            var leadingZeros = 0
            var seenPoint = false
            var exponent = 0
            var exponentNegative = false
            var inExponent = false
            var negative = false
            for byte in text.utf8 {
                switch byte {
                case 0x2D:  // -
                    if inExponent { exponentNegative = true } else { negative = true }
                case 0x2B:  // +
                    break
                case 0x2E:  // .
                    seenPoint = true
                case 0x65, 0x45:  // e E
                    inExponent = true
                case 0x30...0x39:
                    if inExponent {
                        exponent = exponent * 10 + Int(byte - zero)
                    } else {
                        if !seenPoint { pointPosition += 1 }
                        if count == 0 && byte == zero {
                            leadingZeros += 1
                        } else if count < scratch.count {
                            scratch[count] = byte
                            count += 1
                        }
                    }
                default:
                    break
                }
            }
            while count > 1 && scratch[count - 1] == zero { count -= 1 }
            if exponentNegative { exponent = -exponent }
            // value = 0.DIGITS × 10^decimalPoint
            let decimalPoint = pointPosition + exponent - leadingZeros
            emit(digits: UnsafeRawBufferPointer(rebasing: UnsafeMutableRawBufferPointer(scratch)[0..<count]),
                 decimalPoint: decimalPoint, negative: negative, to: &buffer)
        }
    }

    /// Lays out `0.DIGITS × 10^decimalPoint` as `floatToGoString` does.
    ///
    /// `digits` has no leading zeros; trailing zeros are allowed (the integer path has them).
    private static func emit(digits: UnsafeRawBufferPointer, decimalPoint: Int, negative: Bool,
                             to buffer: inout [UInt8]) {
        var significant = digits.count
        while significant > 1 && digits[significant - 1] == zero { significant -= 1 }
        if negative { buffer.append(0x2D) }
        // Python's repr (format code 'r'): fixed notation unless decpt <= -4 or decpt > 16.
        if decimalPoint > -4 && decimalPoint <= 16 {
            if !negative && decimalPoint > 6 {
                // Go's switch to exponents: the mantissa with '0' and '.' stripped on the right.
                appendExponentForm(digits, significant: significant, exponent: decimalPoint - 1, to: &buffer)
                return
            }
            if decimalPoint <= 0 {
                buffer.append(zero)
                buffer.append(dot)
                for _ in 0 ..< -decimalPoint { buffer.append(zero) }
                buffer.append(contentsOf: digits[0..<significant])
            } else if decimalPoint >= significant {
                buffer.append(contentsOf: digits[0..<significant])
                for _ in 0 ..< decimalPoint - significant { buffer.append(zero) }
                buffer.append(dot)
                buffer.append(zero)
            } else {
                buffer.append(contentsOf: digits[0..<decimalPoint])
                buffer.append(dot)
                buffer.append(contentsOf: digits[decimalPoint..<significant])
            }
        } else {
            appendExponentForm(digits, significant: significant, exponent: decimalPoint - 1, to: &buffer)
        }
    }

    /// `D[.DDD]e±XX` with at least two exponent digits, as both Python and Go write it.
    private static func appendExponentForm(_ digits: UnsafeRawBufferPointer, significant: Int, exponent: Int,
                                           to buffer: inout [UInt8]) {
        buffer.append(digits[0])
        if significant > 1 {
            buffer.append(dot)
            buffer.append(contentsOf: digits[1..<significant])
        }
        buffer.append(0x65)  // e
        buffer.append(exponent < 0 ? 0x2D : 0x2B)
        let e = exponent.magnitude
        if e >= 100 { buffer.append(zero &+ UInt8(e / 100)) }
        buffer.append(zero &+ UInt8(e / 10 % 10))
        buffer.append(zero &+ UInt8(e % 10))
    }
}
