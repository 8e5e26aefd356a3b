// TEMPORARY stand-in until the exposition branch lands Sources/MmapStore/FloatFormat.swift.
/// Formats doubles as prometheus_client's `floatToGoString`.
public enum GoFloat {
    /// `+Inf`, `-Inf`, `NaN`, or Python's repr with its exponent rule for large values.
    public static func format(_ d: Double) -> String {
        if d == .infinity { return "+Inf" }
        if d == -.infinity { return "-Inf" }
        if d.isNaN { return "NaN" }
        let s = d.description
        guard d > 0, let dot = s.firstIndex(of: "."), s.distance(from: s.startIndex, to: dot) > 6, !s.contains("e") else { return s }
        let digits = s.distance(from: s.startIndex, to: dot)
        var mantissa = String(s.first!) + "." + s[s.index(after: s.startIndex)..<dot] + s[s.index(after: dot)...]
        while let last = mantissa.last, last == "0" || last == "." { mantissa.removeLast() }
        return mantissa + "e+0" + String(digits - 1)
    }
}
