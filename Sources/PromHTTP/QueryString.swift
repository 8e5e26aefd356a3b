/// A request's query string, decoded as prometheus_client's exporters decode it (Python's
/// `urllib.parse.parse_qs` with its defaults): fields split at `&`, name and value split at
/// the first `=`, `+` read as a space, `%XX` as a byte (a `%` not followed by two hex digits
/// is kept as it is), the bytes read as UTF-8 with U+FFFD for invalid sequences; a field
/// without `=` or with an empty value is ignored.
package enum QueryString {
    /// The values of every field named `name` (compared after decoding, byte for byte), in
    /// order.
    package static func values(of name: String, in query: String) -> [String] {
        var out: [String] = []
        for field in query.utf8.split(separator: UInt8(ascii: "&"), omittingEmptySubsequences: true) {
            guard let eq = field.firstIndex(of: UInt8(ascii: "=")) else { continue }
            let value = field[field.index(after: eq)...]
            guard !value.isEmpty, decoded(field[..<eq]).utf8.elementsEqual(name.utf8) else { continue }
            out.append(decoded(value))
        }
        return out
    }

    /// `+` as a space, `%XX` as a byte, then UTF-8 with replacement.
    static func decoded(_ text: Substring.UTF8View) -> String {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(text.count)
        var i = text.startIndex
        while i < text.endIndex {
            let b = text[i]
            if b == UInt8(ascii: "+") {
                bytes.append(UInt8(ascii: " "))
            } else if b == UInt8(ascii: "%"),
                      let h = text.index(i, offsetBy: 1, limitedBy: text.endIndex), h < text.endIndex,
                      let l = text.index(h, offsetBy: 1, limitedBy: text.endIndex), l < text.endIndex,
                      let high = hexValue(text[h]), let low = hexValue(text[l]) {
                bytes.append(high << 4 | low)
                i = l
            } else {
                bytes.append(b)
            }
            i = text.index(after: i)
        }
        return String(decoding: bytes, as: UTF8.self)
    }

    private static func hexValue(_ c: UInt8) -> UInt8? {
        switch c {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): c - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): c - UInt8(ascii: "a") + 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): c - UInt8(ascii: "A") + 10
        default: nil
        }
    }
}
