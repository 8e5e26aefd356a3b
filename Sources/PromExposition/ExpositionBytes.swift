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
    /// Whether `base` is the caller's storage (``init(inPlace:)``), not this writer's own.
    private(set) var isInPlace = false
    /// Where the sample lines' values go, when the caller keeps the body to re-render only its
    /// values (``ExpositionCache``); nil otherwise. The log outlives the writer.
    var valueLog: UnsafeMutablePointer<ValueLog>?

    init(capacity: Int) {
        self.capacity = max(capacity, 256)
        base = .allocate(capacity: self.capacity)
    }

    /// A writer that writes at the start of `storage`, which the caller owns and keeps for the
    /// writer's life, while the bytes fit in it (``isInPlace``); then into storage of its own,
    /// the bytes written so far copied there.
    init(inPlace storage: UnsafeMutableBufferPointer<UInt8>) {
        if let start = storage.baseAddress, storage.count > 0 {
            base = start
            capacity = storage.count
            isInPlace = true
        } else {
            capacity = 256
            base = .allocate(capacity: capacity)
        }
    }

    deinit { if !isInPlace { base.deallocate() } }

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
        if !isInPlace { base.deallocate() }
        base = newBase
        capacity = newCapacity
        isInPlace = false
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

    /// Writes `bytes` with one `memcpy`.
    @inline(__always)
    mutating func write(_ bytes: UnsafeRawBufferPointer) {
        let n = bytes.count
        guard n > 0, let source = bytes.baseAddress else { return }
        reserve(n)
        UnsafeMutableRawPointer(base + count).copyMemory(from: source, byteCount: n)
        count += n
    }

    /// Writes again the bytes written at `range` (inside what is written).
    @inline(__always)
    mutating func repeatBytes(_ range: Range<Int>) {
        let n = range.count
        guard n > 0, range.lowerBound >= 0, range.upperBound <= count else { return }
        reserve(n)
        (base + count).update(from: base + range.lowerBound, count: n)
        count += n
    }

    /// Writes the UTF-8 bytes of `text` unchanged.
    @inline(__always)
    mutating func write(_ text: String) {
        text.withUTF8Bytes { write($0) }
    }

    /// Writes `bytes` and returns the union of their ``ExpositionBytes/ByteClass``es, in one
    /// pass: the caller learns whether anything in them needed escaping after the fact, and in
    /// the usual case, where nothing did, has nothing more to do. Otherwise it rewinds (a
    /// `count` read before) and writes the slow way.
    @inline(__always)
    mutating func writeClassifying(_ bytes: UnsafeRawBufferPointer) -> ExpositionBytes.ByteClass {
        let n = bytes.count
        reserve(n)
        let destination = base + count
        var classes: UInt8 = 0
        for i in 0 ..< n {
            let b = bytes[i]
            destination[i] = b
            classes |= ExpositionBytes.classOf(b)
        }
        count += n
        return ExpositionBytes.ByteClass(rawValue: classes)
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
        let start = count
        let escape: ExpositionBytes.ByteClass = escapeQuote ? .escapedInQuotes : .escapedInHelp
        // Most values need no escape: copy them while classifying their bytes, and go back
        // only for the few that do.
        let needsEscape = text.withUTF8Bytes { writeClassifying($0) }.contains(escape)
        guard needsEscape else { return }
        rewind(to: start)
        writeEscapedSlowly(text, quote: escapeQuote)
    }

    @inline(never)
    private mutating func writeEscapedSlowly(_ text: String, quote escapeQuote: Bool) {
        let bytes = text.utf8.span
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

    /// Calls `body` with the bytes written so far.
    func withBytes<R>(_ body: (UnsafeRawBufferPointer) -> R) -> R {
        body(UnsafeRawBufferPointer(start: base, count: count))
    }

    /// Appends everything written to `array`.
    mutating func append(to array: inout [UInt8]) {
        array.append(contentsOf: UnsafeBufferPointer(start: base, count: count))
    }

    /// The bytes written, as an array.
    consuming func bytes() -> [UInt8] {
        [UInt8](UnsafeBufferPointer(start: base, count: count))
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

    /// What a byte is to the renderer: which name character sets it falls outside of and where
    /// it must be escaped. The renderer ORs the classes of a name's or value's bytes while it
    /// copies them, so one pass both writes them and says whether they needed anything else.
    struct ByteClass: OptionSet {
        let rawValue: UInt8

        /// Not in `[a-zA-Z0-9_:]`: a metric name holding it is not a legacy name.
        static let outsideMetricName = ByteClass(rawValue: 1 << 0)
        /// Not in `[a-zA-Z0-9_]`: a label name holding it is not a legacy name.
        static let outsideLabelName = ByteClass(rawValue: 1 << 1)
        /// `\`, `"` or newline: escaped in label values and OpenMetrics help texts.
        static let escapedInQuotes = ByteClass(rawValue: 1 << 2)
        /// `\` or newline: escaped in text-format help texts.
        static let escapedInHelp = ByteClass(rawValue: 1 << 3)
    }

    /// The ``ByteClass`` of every byte value.
    ///
    /// Written out as a literal so that the compiler lays it out in the binary: a computed
    /// table would be initialized lazily, and every use would pay a `swift_once` call.
    /// `ExpositionFastPathTests` checks each entry against prometheus_client's legacy-name
    /// regexes and the formats' escapes.
    static let classes: InlineArray<256, UInt8> = {
        let o: UInt8 = 0  // in every legacy name: [a-zA-Z0-9_]
        let c = ByteClass.outsideLabelName.rawValue  // `:`, in legacy metric names only
        let x = ByteClass.outsideMetricName.rawValue | c  // in no legacy name, never escaped
        let q = x | ByteClass.escapedInQuotes.rawValue  // `"`
        let e = q | ByteClass.escapedInHelp.rawValue  // `\` and newline
        return [
            x, x, x, x, x, x, x, x, x, x, e, x, x, x, x, x,  // 0x00 ... 0x0F: control characters, newline
            x, x, x, x, x, x, x, x, x, x, x, x, x, x, x, x,  // 0x10 ... 0x1F: control characters
            x, x, q, x, x, x, x, x, x, x, x, x, x, x, x, x,  // 0x20 ... 0x2F: space ! " # $ % & ' ( ) * + , - . /
            o, o, o, o, o, o, o, o, o, o, c, x, x, x, x, x,  // 0x30 ... 0x3F: 0 ... 9 : ; < = > ?
            x, o, o, o, o, o, o, o, o, o, o, o, o, o, o, o,  // 0x40 ... 0x4F: @ A ... O
            o, o, o, o, o, o, o, o, o, o, o, x, e, x, x, o,  // 0x50 ... 0x5F: P ... Z [ \ ] ^ _
            x, o, o, o, o, o, o, o, o, o, o, o, o, o, o, o,  // 0x60 ... 0x6F: ` a ... o
            o, o, o, o, o, o, o, o, o, o, o, x, x, x, x, x,  // 0x70 ... 0x7F: p ... z { | } ~ DEL
            x, x, x, x, x, x, x, x, x, x, x, x, x, x, x, x,  // 0x80 ... 0xFF: the bytes of multi-byte UTF-8 characters
            x, x, x, x, x, x, x, x, x, x, x, x, x, x, x, x,
            x, x, x, x, x, x, x, x, x, x, x, x, x, x, x, x,
            x, x, x, x, x, x, x, x, x, x, x, x, x, x, x, x,
            x, x, x, x, x, x, x, x, x, x, x, x, x, x, x, x,
            x, x, x, x, x, x, x, x, x, x, x, x, x, x, x, x,
            x, x, x, x, x, x, x, x, x, x, x, x, x, x, x, x,
            x, x, x, x, x, x, x, x, x, x, x, x, x, x, x, x,
        ]
    }()

    /// The raw ``ByteClass`` of `b`. (A `UInt8` indexes all 256 entries, so the check the
    /// subscript makes always passes; the optimizer drops it.)
    @inline(__always)
    static func classOf(_ b: UInt8) -> UInt8 {
        classes[Int(b)]
    }
}

extension String {
    /// Calls `body` with the UTF-8 bytes of the string, borrowed.
    ///
    /// Native strings (all on Linux) have contiguous UTF-8: this is a pointer into their
    /// storage, or for a small string into a copy of its 16 bytes on the stack, with no
    /// allocation and no call into the runtime (unlike `utf8.span`, whose getter is not
    /// inlinable). Any other string is copied first.
    @inline(__always)
    func withUTF8Bytes<R>(_ body: (UnsafeRawBufferPointer) -> R) -> R {
        if let result = utf8.withContiguousStorageIfAvailable({ body(UnsafeRawBufferPointer($0)) }) {
            return result
        }
        var copy = self
        return copy.withUTF8 { body(UnsafeRawBufferPointer($0)) }
    }
}
