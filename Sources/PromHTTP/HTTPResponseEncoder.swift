// Serialisation of responses into the bytes the event loop writes. No I/O here.

enum HTTPResponseEncoder {
    /// The bytes of `response`, framed by the server: `Content-Length` (even for `HEAD`, the
    /// length the body would have), `Connection`, and `Date` unless the handler set one.
    ///
    /// For `HEAD`, a handler that left the body out (as ``MetricsHandler`` does) may state the
    /// length in its own `Content-Length`; the server sends that value instead of 0.
    static func encode(_ response: HTTPResponse, headOnly: Bool, keepAlive: Bool, date: String) -> [UInt8] {
        var status = response.status
        var body = response.body
        var headers = response.headers.filter(isSafeToForward)
        var length = body.count
        if headOnly && body.isEmpty, let declared = declaredContentLength(response.headers) { length = declared }
        if !(200...999).contains(status) {
            // 1xx would promise another response; out-of-range codes are handler bugs.
            status = 500
            body = Array("handler returned an invalid status\n".utf8)
            headers = []
            length = body.count
        }
        var out: [UInt8] = []
        out.reserveCapacity(body.count + 256)
        append("HTTP/1.1 \(status) \(HTTPResponse.reasonPhrase(status))\r\n", to: &out)
        for field in headers {
            append(field.name, to: &out)
            append(": ", to: &out)
            append(field.value, to: &out)
            append("\r\n", to: &out)
        }
        if !headers.contains(where: { asciiCaseInsensitiveEquals($0.name, "Date") }) {
            append("Date: \(date)\r\n", to: &out)
        }
        // 204 and 304 carry no body (RFC 9110 §6.4.1); 204 not even a Content-Length.
        let bodyAllowed = status != 204 && status != 304
        if status != 204 { append("Content-Length: \(bodyAllowed ? length : 0)\r\n", to: &out) }
        append(keepAlive ? "Connection: keep-alive\r\n\r\n" : "Connection: close\r\n\r\n", to: &out)
        if !headOnly && bodyAllowed { out += body }
        return out
    }

    /// A response the server itself sends before closing (a rejected request or an
    /// overloaded server): a short text body naming the problem, `Allow` for 405.
    static func rejection(status: Int, message: String, headOnly: Bool, date: String) -> [UInt8] {
        var extra: [HTTPHeader] = []
        if status == 405 { extra.append(HTTPHeader(name: "Allow", value: "GET, HEAD")) }
        return encode(.text(status, message + "\n", headers: extra), headOnly: headOnly, keepAlive: false, date: date)
    }

    /// Whether a handler's field can be sent as is: a token name, a value without control
    /// characters (no CR or LF, so no response splitting), and not one the server frames.
    static func isSafeToForward(_ field: HTTPHeader) -> Bool {
        guard !field.name.isEmpty, field.name.utf8.allSatisfy(HTTPRequestParser.isTokenByte),
            field.value.utf8.allSatisfy({ $0 == 0x09 || ($0 >= 0x20 && $0 != 0x7F) })
        else { return false }
        for reserved in ["Content-Length", "Transfer-Encoding", "Connection", "Keep-Alive"]
        where asciiCaseInsensitiveEquals(field.name, reserved) {
            return false
        }
        return true
    }

    /// The value of the handler's `Content-Length` field when it is one non-negative decimal
    /// number (a field repeated with another value, or anything else, gives nil).
    static func declaredContentLength(_ headers: [HTTPHeader]) -> Int? {
        var found: Int?
        for field in headers where asciiCaseInsensitiveEquals(field.name, "Content-Length") {
            let digits = field.value.utf8
            guard !digits.isEmpty, digits.count <= 18, digits.allSatisfy({ $0 >= 0x30 && $0 <= 0x39 }),
                  let value = Int(field.value), found == nil || found == value else { return nil }
            found = value
        }
        return found
    }

    @inline(__always)
    private static func append(_ s: String, to out: inout [UInt8]) { out.append(contentsOf: s.utf8) }

    /// An IMF-fixdate (RFC 9110 §5.6.7), such as `Sun, 06 Nov 1994 08:49:37 GMT`, for the
    /// given seconds since the Unix epoch.
    static func httpDate(epochSeconds: Int) -> String {
        let days = epochSeconds >= 0 ? epochSeconds / 86_400 : (epochSeconds - 86_399) / 86_400
        let secondsOfDay = epochSeconds - days * 86_400
        // Howard Hinnant's civil_from_days.
        let z = days + 719_468
        let era = (z >= 0 ? z : z - 146_096) / 146_097
        let dayOfEra = z - era * 146_097
        let yearOfEra = (dayOfEra - dayOfEra / 1460 + dayOfEra / 36_524 - dayOfEra / 146_096) / 365
        let dayOfYear = dayOfEra - (365 * yearOfEra + yearOfEra / 4 - yearOfEra / 100)
        let mp = (5 * dayOfYear + 2) / 153
        let day = dayOfYear - (153 * mp + 2) / 5 + 1
        let month = mp < 10 ? mp + 3 : mp - 9
        let year = yearOfEra + era * 400 + (month <= 2 ? 1 : 0)
        let weekday = ((days % 7) + 11) % 7  // 1970-01-01 was a Thursday (index 4 from Sunday)
        let weekdays = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"]
        let months = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]
        func two(_ n: Int) -> String { n < 10 ? "0\(n)" : "\(n)" }
        return "\(weekdays[weekday]), \(two(day)) \(months[month - 1]) \(year) "
            + "\(two(secondsOfDay / 3600)):\(two(secondsOfDay / 60 % 60)):\(two(secondsOfDay % 60)) GMT"
    }
}
