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
/// assert(GoFloat.format(1_000_000) == "1e+06")
/// assert(GoFloat.format(0.005) == "0.005")
/// assert(GoFloat.format(-.infinity) == "-Inf")
/// ```
package enum GoFloat {
    /// Formats `value` as prometheus_client's `floatToGoString` does.
    /// - Parameter value: Any double, including infinities, NaN and `-0.0`.
    /// - Returns: `+Inf`, `-Inf`, `NaN`, or Python's `repr` with Go's exponent rule.
    package static func format(_ value: Double) -> String {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(24)
        append(value, to: &bytes)
        return String(decoding: bytes, as: UTF8.self)
    }

    /// Appends the bytes of ``format(_:)`` to `buffer`, without creating a `String`.
    /// - Parameters:
    ///   - value: The value to format.
    ///   - buffer: The buffer the ASCII bytes are appended to.
    package static func append(_ value: Double, to buffer: inout [UInt8]) {
        withUnsafeTemporaryAllocation(of: UInt8.self, capacity: maximumLength) { scratch in
            guard let base = scratch.baseAddress else { return }
            let count = write(value, into: base)
            buffer.append(contentsOf: UnsafeBufferPointer(start: base, count: count))
        }
    }

    /// The most bytes ``write(_:into:)`` writes (`-2.2250738585072014e-308` is 24).
    package static let maximumLength = 32

    /// Writes the bytes of ``format(_:)`` at `out`, which must have room for
    /// ``maximumLength`` bytes, and returns how many were written.
    package static func write(_ value: Double, into out: UnsafeMutablePointer<UInt8>) -> Int {
        if value.isNaN {
            out[0] = 0x4E; out[1] = 0x61; out[2] = 0x4E  // NaN
            return 3
        }
        if value.isInfinite {
            out[0] = value > 0 ? 0x2B : 0x2D  // + or -
            out[1] = 0x49; out[2] = 0x6E; out[3] = 0x66  // Inf
            return 4
        }
        let magnitude = value.magnitude
        // Fast path for integers below 2^53: every one of them is a double of its own, so its
        // shortest round-trip digits are its decimal digits (trailing zeros aside). Counters,
        // bucket counts and most gauges take this path.
        // (`rounded(.towardZero)` would be a call into libm's `trunc` on baseline x86-64; the
        // conversion to an integer and back is two instructions.)
        if magnitude < 9_007_199_254_740_992 {
            let integer = UInt64(magnitude)
            if Double(integer) == magnitude { return writeInteger(integer, negative: value.sign == .minus, into: out) }
        }
        return writeShortest(value, into: out)
    }

    private static let zero: UInt8 = 0x30
    private static let dot: UInt8 = 0x2E

    private static func writeInteger(_ n: UInt64, negative: Bool, into out: UnsafeMutablePointer<UInt8>) -> Int {
        var count = 0
        if negative { out[0] = 0x2D; count = 1 }
        var digits = 1
        var power: UInt64 = 10
        while digits < 16 && n >= power { digits += 1; power &*= 10 }
        if negative || digits <= 6 {
            // Python's repr: the digits and ".0".
            var m = n
            var index = count + digits
            repeat {
                index -= 1
                out[index] = zero &+ UInt8(truncatingIfNeeded: m % 10)
                m /= 10
            } while m != 0
            count += digits
            out[count] = dot
            out[count + 1] = zero
            return count + 2
        }
        // Seven digits or more, positive: Go's exponent form, via the general layout.
        return withUnsafeTemporaryAllocation(of: UInt8.self, capacity: 16) { scratch in
            guard let base = scratch.baseAddress else { return 0 }
            var m = n
            var index = digits
            repeat {
                index -= 1
                base[index] = zero &+ UInt8(truncatingIfNeeded: m % 10)
                m /= 10
            } while m != 0
            return emit(digits: base, count: digits, decimalPoint: digits, negative: false, into: out)
        }
    }

    private static func writeShortest(_ value: Double, into out: UnsafeMutablePointer<UInt8>) -> Int {
        // Swift's `description` is the shortest round-trip representation (SwiftDtoa), the
        // same digits as Python's repr (checked against Python on random doubles in the
        // tests); only its layout differs, so take the digits and exponent out of it and lay
        // them out as Python does. Descriptions of up to 15 bytes are small strings, with no
        // heap allocation.
        let text = value.description
        return withUnsafeTemporaryAllocation(of: UInt8.self, capacity: 32) { scratch in
            guard let digits = scratch.baseAddress else { return 0 }
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
                        } else if count < 32 {
                            digits[count] = byte
                            count += 1
                        }
                    }
                default:  // '+' of the exponent
                    break
                }
            }
            if exponentNegative { exponent = -exponent }
            // value = 0.DIGITS × 10^decimalPoint
            return emit(digits: digits, count: count, decimalPoint: pointPosition + exponent - leadingZeros,
                        negative: negative, into: out)
        }
    }

    /// Lays out `0.DIGITS × 10^decimalPoint` as `floatToGoString` does.
    ///
    /// `digits` has no leading zeros; trailing zeros are allowed.
    private static func emit(digits: UnsafeMutablePointer<UInt8>, count digitCount: Int, decimalPoint: Int,
                             negative: Bool, into out: UnsafeMutablePointer<UInt8>) -> Int {
        var significant = digitCount
        while significant > 1 && digits[significant - 1] == zero { significant -= 1 }
        var n = 0
        func put(_ byte: UInt8) { out[n] = byte; n += 1 }
        func putDigits(_ range: Range<Int>) { for i in range { put(digits[i]) } }
        func putExponentForm(_ exponent: Int) {
            // D[.DDD]e±XX with at least two exponent digits, as both Python and Go write it.
            put(digits[0])
            if significant > 1 {
                put(dot)
                putDigits(1 ..< significant)
            }
            put(0x65)  // e
            put(exponent < 0 ? 0x2D : 0x2B)
            let e = exponent.magnitude
            if e >= 100 { put(zero &+ UInt8(e / 100)) }
            put(zero &+ UInt8(e / 10 % 10))
            put(zero &+ UInt8(e % 10))
        }
        if negative { put(0x2D) }
        // Python's repr (format code 'r'): fixed notation unless decpt <= -4 or decpt > 16.
        guard decimalPoint > -4 && decimalPoint <= 16 else {
            putExponentForm(decimalPoint - 1)
            return n
        }
        if !negative && decimalPoint > 6 {
            // Go's switch to exponents: the mantissa with '0' and '.' stripped on the right.
            putExponentForm(decimalPoint - 1)
        } else if decimalPoint <= 0 {
            put(zero)
            put(dot)
            for _ in 0 ..< -decimalPoint { put(zero) }
            putDigits(0 ..< significant)
        } else if decimalPoint >= significant {
            putDigits(0 ..< significant)
            for _ in 0 ..< decimalPoint - significant { put(zero) }
            put(dot)
            put(zero)
        } else {
            putDigits(0 ..< decimalPoint)
            put(dot)
            putDigits(decimalPoint ..< significant)
        }
        return n
    }
}
