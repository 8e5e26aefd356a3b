import PromMetrics

/// A growable byte buffer the renderer writes into with plain stores.
///
/// `[UInt8].append` checks uniqueness and capacity on every call; a scrape writes millions of
/// bytes in short pieces, so the renderer writes here and hands the result to the caller's
/// array with one copy at the end.
struct ByteWriter: ~Copyable {
    private var base: UnsafeMutablePointer<UInt8>
    private var capacity: Int
    private(set) var count = 0

    init(capacity: Int) {
        self.capacity = max(capacity, 256)
        base = .allocate(capacity: self.capacity)
    }

    deinit { base.deallocate() }

    /// Makes room for `extra` more bytes.
    @inline(__always)
    mutating func reserve(_ extra: Int) {
        if count + extra > capacity { grow(extra) }
    }

    @inline(never)
    private mutating func grow(_ extra: Int) {
        let newCapacity = max(capacity * 2, count + extra)
        let newBase = UnsafeMutablePointer<UInt8>.allocate(capacity: newCapacity)
        newBase.update(from: base, count: count)
        base.deallocate()
        base = newBase
        capacity = newCapacity
    }

    @inline(__always)
    mutating func write(_ byte: UInt8) {
        reserve(1)
        base[count] = byte
        count += 1
    }

    @inline(__always)
    mutating func write(_ byte1: UInt8, _ byte2: UInt8) {
        reserve(2)
        base[count] = byte1
        base[count + 1] = byte2
        count += 2
    }

    /// Writes `bytes`.
    ///
    /// Strings reach the writer as `text.utf8.span`: borrowed, with no copy and no retain, and
    /// indexed rather than passed to a closure, which the optimizer inlines reliably.
    @inline(__always)
    mutating func write(_ bytes: Span<UInt8>) {
        let n = bytes.count
        reserve(n)
        let destination = base + count
        for i in 0 ..< n { destination[i] = bytes[unchecked: i] }
        count += n
    }

    /// Writes the UTF-8 bytes of `text` unchanged.
    @inline(__always)
    mutating func write(_ text: String) {
        write(text.utf8.span)
    }

    /// Writes the bytes of an ASCII literal.
    @inline(__always)
    mutating func write(_ text: StaticString) {
        let n = text.utf8CodeUnitCount
        reserve(n)
        (base + count).update(from: text.utf8Start, count: n)
        count += n
    }

    /// Writes `value` as `GoFloat` formats it.
    @inline(__always)
    mutating func writeValue(_ value: Double) {
        reserve(GoFloat.maximumLength)
        count += GoFloat.write(value, into: base + count)
    }

    /// Writes `text`, escaping `\` as `\\`, newline as `\n` and, when `quote` is set, `"` as
    /// `\"`. Label values and OpenMetrics help texts escape all three; text-format help texts
    /// leave `"` alone.
    @inline(__always)
    mutating func writeEscaped(_ text: String, quote escapeQuote: Bool) {
        let bytes = text.utf8.span
        // Most values need no escape: copy them in one go.
        var needsEscape = false
        for i in 0 ..< bytes.count {
            let b = bytes[unchecked: i]
            if b == ExpositionBytes.backslash || b == ExpositionBytes.newline || (escapeQuote && b == ExpositionBytes.quote) {
                needsEscape = true
                break
            }
        }
        if !needsEscape {
            write(bytes)
            return
        }
        reserve(bytes.count * 2)
        for i in 0 ..< bytes.count {
            let b = bytes[unchecked: i]
            switch b {
            case ExpositionBytes.backslash: write(ExpositionBytes.backslash, ExpositionBytes.backslash)
            case ExpositionBytes.newline: write(ExpositionBytes.backslash, 0x6E)  // \n
            case ExpositionBytes.quote where escapeQuote: write(ExpositionBytes.backslash, ExpositionBytes.quote)
            default: write(b)
            }
        }
    }

    // MARK: Protocol Buffers wire primitives

    /// Writes `value` as a base-128 varint: seven bits per byte, least significant first, the
    /// high bit set on every byte but the last.
    @inline(__always)
    mutating func writeVarint(_ value: UInt64) {
        reserve(10)
        var v = value
        while v >= 0x80 {
            base[count] = UInt8(truncatingIfNeeded: v) | 0x80
            count += 1
            v >>= 7
        }
        base[count] = UInt8(truncatingIfNeeded: v)
        count += 1
    }

    /// Writes the IEEE 754 bits of `value`, little-endian (a protobuf `double`).
    @inline(__always)
    mutating func writeFixed64(_ value: Double) {
        reserve(8)
        UnsafeMutableRawPointer(base + count).storeBytes(of: value.bitPattern.littleEndian, as: UInt64.self)
        count += 8
    }

    /// Starts a length-prefixed payload: reserves one byte for its length and returns where the
    /// payload starts, for ``endLengthPrefixed(_:)``.
    ///
    /// Nested protobuf messages are prefixed with their length, which is known only once they
    /// are written. Most messages here (labels, buckets, most series) are shorter than 128
    /// bytes, so one byte is right; a longer payload is moved up by the few extra bytes its
    /// length needs, which is one `memmove`.
    @inline(__always)
    mutating func beginLengthPrefixed() -> Int {
        reserve(1)
        count += 1
        return count
    }

    /// Ends the payload started at `start`: writes its length as a varint in front of it.
    @inline(__always)
    mutating func endLengthPrefixed(_ start: Int) {
        let length = count - start
        if length < 0x80 {
            base[start - 1] = UInt8(truncatingIfNeeded: length)
            return
        }
        moveAndPrefixLength(start, length: length)
    }

    @inline(never)
    private mutating func moveAndPrefixLength(_ start: Int, length: Int) {
        var extra = 0
        var rest = UInt64(length) >> 7
        while rest != 0 {
            extra += 1
            rest >>= 7
        }
        reserve(extra)
        // `copyMemory` is a memmove: the two regions overlap.
        UnsafeMutableRawPointer(base + start + extra).copyMemory(from: base + start, byteCount: length)
        var position = start - 1
        var v = UInt64(length)
        while v >= 0x80 {
            base[position] = UInt8(truncatingIfNeeded: v) | 0x80
            position += 1
            v >>= 7
        }
        base[position] = UInt8(truncatingIfNeeded: v)
        count += extra
    }

    /// Forgets everything written after `position` (a `count` read earlier).
    @inline(__always)
    mutating func rewind(to position: Int) {
        precondition(position >= 0 && position <= count, "rewind past the written bytes")
        count = position
    }

    /// Appends everything written to `array`.
    mutating func append(to array: inout [UInt8]) {
        array.append(contentsOf: UnsafeBufferPointer(start: base, count: count))
    }
}

/// Byte constants and UTF-8 access.
enum ExpositionBytes {
    static let backslash: UInt8 = 0x5C
    static let quote: UInt8 = 0x22
    static let newline: UInt8 = 0x0A
    static let space: UInt8 = 0x20
    static let comma: UInt8 = 0x2C
    static let equals: UInt8 = 0x3D
    static let openBrace: UInt8 = 0x7B
    static let closeBrace: UInt8 = 0x7D
}
