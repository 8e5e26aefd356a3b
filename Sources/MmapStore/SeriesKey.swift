/// A label: a name and its value.
public struct Label: Hashable, Sendable, CustomStringConvertible {
    /// The label name, such as `method`.
    public var name: String
    /// The label value, such as `GET`.
    public var value: String

    /// Creates a label.
    public init(_ name: String, _ value: String) {
        self.name = name
        self.value = value
    }

    /// `name="value"`, unescaped; for messages.
    public var description: String { "\(name)=\"\(value)\"" }

    /// Orders names as Python's `sort_keys` does: by Unicode code point, not by Swift's
    /// canonical-equivalence `<`.
    @inlinable
    package static func codePointLess(_ a: String, _ b: String) -> Bool {
        a.unicodeScalars.lexicographicallyPrecedes(b.unicodeScalars) { $0.value < $1.value }
    }
}

/// The identity of one stored value: `[family, sample, {labels}, help]`.
///
/// In the file it is stored as the bytes of
/// `json.dumps([family, sample, labels, help], sort_keys=True)`, byte for byte as
/// prometheus_client writes it, so that a Python writer reopening the file finds the entry:
///
/// - separators `", "` and `": "`;
/// - label names sorted by Unicode code point;
/// - ASCII only: `\"`, `\\`, `\n`, `\r`, `\t`, `\b`, `\f`, and lower-case `\uXXXX` for every
///   other character outside `0x20...0x7E` (0x7F included), non-BMP characters as a UTF-16
///   surrogate pair; `/` is not escaped.
package struct SeriesKey: Hashable, Sendable, CustomStringConvertible {
    /// The family (metric) name, without `_total` for counters.
    package var family: String
    /// The sample name: `<family>_total`, `<family>_bucket`, `<family>_sum`, ...
    package var sample: String
    /// The labels, sorted by name in code-point order.
    package private(set) var labels: [Label]
    /// The help text.
    package var help: String

    /// Creates a key; the labels are sorted by name in code-point order.
    package init(family: String, sample: String, labels: [Label], help: String) {
        self.family = family
        self.sample = sample
        self.labels = labels.sorted { Label.codePointLess($0.name, $1.name) }
        self.help = help
    }

    /// The JSON text, for messages.
    package var description: String { String(decoding: encoded(), as: UTF8.self) }

    /// The key's bytes as prometheus_client writes them.
    package func encoded() -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(64 + family.utf8.count * 2 + help.utf8.count + labels.count * 24)
        out.append(UInt8(ascii: "["))
        KeyCodec.appendString(family, to: &out)
        out.append(UInt8(ascii: ",")); out.append(UInt8(ascii: " "))
        KeyCodec.appendString(sample, to: &out)
        out.append(UInt8(ascii: ",")); out.append(UInt8(ascii: " "))
        out.append(UInt8(ascii: "{"))
        for (i, label) in labels.enumerated() {
            if i > 0 { out.append(UInt8(ascii: ",")); out.append(UInt8(ascii: " ")) }
            KeyCodec.appendString(label.name, to: &out)
            out.append(UInt8(ascii: ":")); out.append(UInt8(ascii: " "))
            KeyCodec.appendString(label.value, to: &out)
        }
        out.append(UInt8(ascii: "}"))
        out.append(UInt8(ascii: ",")); out.append(UInt8(ascii: " "))
        KeyCodec.appendString(help, to: &out)
        out.append(UInt8(ascii: "]"))
        return out
    }

    /// Decodes a key from the JSON bytes stored in a file.
    ///
    /// Accepts any JSON of the right shape (whitespace, `\/`, escapes of any case), not only
    /// Python's exact bytes.
    /// - Throws: `KeyDecodingError` naming the byte offset and the problem.
    package init(decoding bytes: UnsafeRawBufferPointer) throws(KeyDecodingError) {
        var p = KeyCodec.Parser(bytes: bytes)
        try p.expect(UInt8(ascii: "["))
        let family = try p.string()
        try p.expect(UInt8(ascii: ","))
        let sample = try p.string()
        try p.expect(UInt8(ascii: ","))
        try p.expect(UInt8(ascii: "{"))
        var labels: [Label] = []
        if try !p.consumeIf(UInt8(ascii: "}")) {
            repeat {
                let name = try p.string()
                try p.expect(UInt8(ascii: ":"))
                let value = try p.string()
                labels.append(Label(name, value))
            } while try p.consumeIf(UInt8(ascii: ","))
            try p.expect(UInt8(ascii: "}"))
        }
        try p.expect(UInt8(ascii: ","))
        let help = try p.string()
        try p.expect(UInt8(ascii: "]"))
        try p.end()
        self.family = family
        self.sample = sample
        self.help = help
        // Compare names by their bytes, as Python does: Swift's String equality treats
        // canonically equivalent names ("\u{e9}" and "e\u{301}") as one.
        var seen = Set<[UInt8]>()
        for l in labels where !seen.insert(Array(l.name.utf8)).inserted {
            throw KeyDecodingError(offset: 0, reason: "duplicate label name '\(l.name)'")
        }
        self.labels = labels.sorted { Label.codePointLess($0.name, $1.name) }
    }

    /// Decodes a key from bytes.
    package init(decoding bytes: [UInt8]) throws(KeyDecodingError) {
        let r: Result<SeriesKey, KeyDecodingError> = bytes.withUnsafeBytes { raw in
            do throws(KeyDecodingError) { return .success(try SeriesKey(decoding: raw)) } catch { return .failure(error) }
        }
        self = try r.get()
    }
}

/// A key that is not a JSON `[string, string, {string: string}, string]` array.
package struct KeyDecodingError: Error, Hashable, Sendable, CustomStringConvertible {
    /// The byte offset inside the key where decoding failed.
    package var offset: Int
    /// What was wrong.
    package var reason: String

    /// Creates an error.
    package init(offset: Int, reason: String) {
        self.offset = offset
        self.reason = reason
    }

    /// `invalid key at byte N: reason`.
    package var description: String { "invalid key at byte \(offset): \(reason)" }
}

/// The hand-written JSON codec for keys (Foundation's is 20 to 100 times slower).
enum KeyCodec {
    static let hex: [UInt8] = Array("0123456789abcdef".utf8)

    static func appendString(_ s: String, to out: inout [UInt8]) {
        out.append(UInt8(ascii: "\""))
        var s = s
        s.withUTF8 { u in
            var i = 0
            var runStart = 0
            while i < u.count {
                let b = u[i]
                if b >= 0x20 && b < 0x7F && b != 0x22 && b != 0x5C { i += 1; continue }
                if runStart < i { out.append(contentsOf: UnsafeBufferPointer(rebasing: u[runStart..<i])) }
                if b < 0x80 {
                    switch b {
                    case 0x22: out.append(0x5C); out.append(0x22)
                    case 0x5C: out.append(0x5C); out.append(0x5C)
                    case 0x0A: out.append(0x5C); out.append(UInt8(ascii: "n"))
                    case 0x0D: out.append(0x5C); out.append(UInt8(ascii: "r"))
                    case 0x09: out.append(0x5C); out.append(UInt8(ascii: "t"))
                    case 0x08: out.append(0x5C); out.append(UInt8(ascii: "b"))
                    case 0x0C: out.append(0x5C); out.append(UInt8(ascii: "f"))
                    default: appendUnicodeEscape(UInt16(b), to: &out)
                    }
                    i += 1
                } else {
                    // Decode one UTF-8 scalar (the input is valid UTF-8: it came from a String).
                    let (scalar, length) = decodeScalar(u, at: i)
                    if scalar >= 0x10000 {
                        let v = scalar - 0x10000
                        appendUnicodeEscape(UInt16(0xD800 + (v >> 10)), to: &out)
                        appendUnicodeEscape(UInt16(0xDC00 + (v & 0x3FF)), to: &out)
                    } else {
                        appendUnicodeEscape(UInt16(scalar), to: &out)
                    }
                    i += length
                }
                runStart = i
            }
            if runStart < u.count { out.append(contentsOf: UnsafeBufferPointer(rebasing: u[runStart..<u.count])) }
        }
        out.append(UInt8(ascii: "\""))
    }

    @inline(__always)
    static func appendUnicodeEscape(_ v: UInt16, to out: inout [UInt8]) {
        out.append(0x5C); out.append(UInt8(ascii: "u"))
        out.append(hex[Int(v >> 12)]); out.append(hex[Int((v >> 8) & 0xF)])
        out.append(hex[Int((v >> 4) & 0xF)]); out.append(hex[Int(v & 0xF)])
    }

    @inline(__always)
    static func decodeScalar(_ u: UnsafeBufferPointer<UInt8>, at i: Int) -> (UInt32, Int) {
        let b0 = UInt32(u[i])
        if b0 >= 0xF0, i + 3 < u.count {
            return (((b0 & 0x07) << 18) | ((UInt32(u[i + 1]) & 0x3F) << 12) | ((UInt32(u[i + 2]) & 0x3F) << 6) | (UInt32(u[i + 3]) & 0x3F), 4)
        }
        if b0 >= 0xE0, i + 2 < u.count {
            return (((b0 & 0x0F) << 12) | ((UInt32(u[i + 1]) & 0x3F) << 6) | (UInt32(u[i + 2]) & 0x3F), 3)
        }
        if b0 >= 0xC0, i + 1 < u.count {
            return (((b0 & 0x1F) << 6) | (UInt32(u[i + 1]) & 0x3F), 2)
        }
        return (0xFFFD, 1)
    }

    /// A bounds-checked JSON reader over the key bytes.
    struct Parser {
        let bytes: UnsafeRawBufferPointer
        var i = 0

        init(bytes: UnsafeRawBufferPointer) { self.bytes = bytes }

        @inline(__always)
        mutating func skipSpace() {
            while i < bytes.count {
                let b = bytes[i]
                if b == 0x20 || b == 0x0A || b == 0x0D || b == 0x09 { i += 1 } else { return }
            }
        }

        mutating func expect(_ c: UInt8) throws(KeyDecodingError) {
            skipSpace()
            guard i < bytes.count else { throw KeyDecodingError(offset: i, reason: "unexpected end, expected '\(Character(Unicode.Scalar(c)))'") }
            guard bytes[i] == c else {
                throw KeyDecodingError(offset: i, reason: "expected '\(Character(Unicode.Scalar(c)))', found byte 0x\(String(bytes[i], radix: 16))")
            }
            i += 1
        }

        mutating func consumeIf(_ c: UInt8) throws(KeyDecodingError) -> Bool {
            skipSpace()
            if i < bytes.count && bytes[i] == c { i += 1; return true }
            return false
        }

        mutating func end() throws(KeyDecodingError) {
            skipSpace()
            if i != bytes.count { throw KeyDecodingError(offset: i, reason: "trailing bytes after the key") }
        }

        mutating func string() throws(KeyDecodingError) -> String {
            try expect(0x22)
            let start = i
            // Fast path: no escapes and valid UTF-8.
            var ascii = true
            while i < bytes.count {
                let b = bytes[i]
                if b == 0x22 {
                    let raw = UnsafeRawBufferPointer(rebasing: bytes[start..<i])
                    i += 1
                    // ASCII is valid UTF-8: skip the validating initializer, whose generic
                    // path costs more than the rest of decoding a key.
                    if ascii { return String(decoding: raw, as: UTF8.self) }
                    guard let s = String(validating: raw, as: UTF8.self) else {
                        throw KeyDecodingError(offset: start, reason: "string is not valid UTF-8")
                    }
                    return s
                }
                if b == 0x5C { break }
                if b < 0x20 { throw KeyDecodingError(offset: i, reason: "control character in string") }
                if b >= 0x80 { ascii = false }
                i += 1
            }
            i = start
            return try slowString()
        }

        mutating func slowString() throws(KeyDecodingError) -> String {
            var out: [UInt8] = []
            while true {
                guard i < bytes.count else { throw KeyDecodingError(offset: i, reason: "unterminated string") }
                let b = bytes[i]
                if b == 0x22 { i += 1; break }
                if b < 0x20 { throw KeyDecodingError(offset: i, reason: "control character in string") }
                if b != 0x5C { out.append(b); i += 1; continue }
                i += 1
                guard i < bytes.count else { throw KeyDecodingError(offset: i, reason: "unterminated escape") }
                let e = bytes[i]
                i += 1
                switch e {
                case UInt8(ascii: "\""): out.append(0x22)
                case UInt8(ascii: "\\"): out.append(0x5C)
                case UInt8(ascii: "/"): out.append(0x2F)
                case UInt8(ascii: "n"): out.append(0x0A)
                case UInt8(ascii: "r"): out.append(0x0D)
                case UInt8(ascii: "t"): out.append(0x09)
                case UInt8(ascii: "b"): out.append(0x08)
                case UInt8(ascii: "f"): out.append(0x0C)
                case UInt8(ascii: "u"):
                    var scalar = UInt32(try hex4())
                    if scalar >= 0xD800 && scalar < 0xDC00 {
                        // A high surrogate must be followed by an escaped low one; a lone
                        // surrogate (which Python accepts) becomes U+FFFD.
                        if i + 1 < bytes.count && bytes[i] == 0x5C && bytes[i + 1] == UInt8(ascii: "u") {
                            let save = i
                            i += 2
                            let low = UInt32(try hex4())
                            if low >= 0xDC00 && low < 0xE000 {
                                scalar = 0x10000 + ((scalar - 0xD800) << 10) + (low - 0xDC00)
                            } else {
                                i = save
                                scalar = 0xFFFD
                            }
                        } else {
                            scalar = 0xFFFD
                        }
                    } else if scalar >= 0xDC00 && scalar < 0xE000 {
                        scalar = 0xFFFD
                    }
                    let u = Unicode.Scalar(scalar) ?? "\u{FFFD}"
                    out.append(contentsOf: Array(String(Character(u)).utf8))
                default:
                    throw KeyDecodingError(offset: i - 1, reason: "invalid escape '\\\(Character(Unicode.Scalar(e)))'")
                }
            }
            guard let s = String(validating: out, as: UTF8.self) else {
                throw KeyDecodingError(offset: i, reason: "string is not valid UTF-8")
            }
            return s
        }

        mutating func hex4() throws(KeyDecodingError) -> UInt16 {
            guard i + 4 <= bytes.count else { throw KeyDecodingError(offset: i, reason: "truncated \\u escape") }
            var v: UInt16 = 0
            for _ in 0..<4 {
                let c = bytes[i]
                let d: UInt8
                switch c {
                case 0x30...0x39: d = c - 0x30
                case 0x61...0x66: d = c - 0x61 + 10
                case 0x41...0x46: d = c - 0x41 + 10
                default: throw KeyDecodingError(offset: i, reason: "invalid hex digit in \\u escape")
                }
                v = v << 4 | UInt16(d)
                i += 1
            }
            return v
        }
    }
}
