/// Appending text to a byte buffer, with the escapes of the exposition formats.
enum ExpositionBytes {
    static let backslash: UInt8 = 0x5C
    static let quote: UInt8 = 0x22
    static let newline: UInt8 = 0x0A
    static let space: UInt8 = 0x20
    static let comma: UInt8 = 0x2C
    static let equals: UInt8 = 0x3D
    static let openBrace: UInt8 = 0x7B
    static let closeBrace: UInt8 = 0x7D

    /// Appends `text`, escaping `\` as `\\`, newline as `\n` and, when `quote` is set, `"` as
    /// `\"`. Label values and OpenMetrics help texts escape all three; text-format help texts
    /// leave `"` alone.
    @inline(__always)
    static func appendEscaped(_ text: String, quote escapeQuote: Bool, to buffer: inout [UInt8]) {
        var text = text  // withUTF8 is mutating: it makes a bridged string native first
        text.withUTF8 { bytes in
            // Most values need no escape: copy them in one go.
            var needsEscape = false
            for b in bytes where b == backslash || b == newline || (escapeQuote && b == quote) {
                needsEscape = true
                break
            }
            if !needsEscape {
                buffer.append(contentsOf: bytes)
                return
            }
            for b in bytes {
                switch b {
                case backslash: buffer.append(backslash); buffer.append(backslash)
                case newline: buffer.append(backslash); buffer.append(0x6E)  // \n
                case quote where escapeQuote: buffer.append(backslash); buffer.append(quote)
                default: buffer.append(b)
                }
            }
        }
    }

    /// Appends the UTF-8 bytes of `text` unchanged.
    @inline(__always)
    static func append(_ text: String, to buffer: inout [UInt8]) {
        buffer.append(contentsOf: text.utf8)
    }

    /// Appends the bytes of an ASCII literal.
    @inline(__always)
    static func append(_ text: StaticString, to buffer: inout [UInt8]) {
        text.withUTF8Buffer { buffer.append(contentsOf: $0) }
    }
}
