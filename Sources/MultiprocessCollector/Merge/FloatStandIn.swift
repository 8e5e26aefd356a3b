// TODO(merge): switch to `GoFloat.format` (Sources/MmapStore/FloatFormat.swift, added by the
// exposition work) once it is on main, and delete this file.

/// Formats a bucket bound the way prometheus_client's `floatToGoString` does: `+Inf`, `-Inf`,
/// `NaN`, the shortest repr otherwise, switching to Go's exponent form (`1e+06`) for positive
/// values with more than six integer digits.
func goFloatStandIn(_ d: Double) -> String {
    if d == .infinity { return "+Inf" }
    if d == -.infinity { return "-Inf" }
    if d.isNaN { return "NaN" }
    // Swift's description is the shortest round-trip form, like Python's repr, and both use
    // exponents below 1e-4; they differ only for large magnitudes, which the Go rule below
    // (or Swift's own exponent form, `1e+16`) covers.
    let s = d.description
    guard d > 0, let dot = s.firstIndex(of: "."), !s.contains("e") else { return pythonExponent(s) }
    let intDigits = s.distance(from: s.startIndex, to: dot)
    guard intDigits > 6 else { return s }
    var digits = String(s[s.index(after: s.startIndex)..<dot]) + String(s[s.index(after: dot)...])
    while digits.hasSuffix("0") { digits.removeLast() }
    let mantissa = digits.isEmpty ? String(s.first!) : "\(s.first!).\(digits)"
    let exponent = intDigits - 1
    return "\(mantissa)e+\(exponent < 10 ? "0" : "")\(exponent)"
}

/// Python writes two-digit exponents (`1e-05`, `1e+16`); Swift does too for these ranges, but
/// normalise a one-digit exponent if one ever appears.
private func pythonExponent(_ s: String) -> String {
    guard let e = s.firstIndex(where: { $0 == "e" || $0 == "E" }) else { return s }
    let mantissa = s[..<e]
    var rest = s[s.index(after: e)...]
    var sign = "+"
    if let f = rest.first, f == "+" || f == "-" { sign = String(f); rest = rest.dropFirst() }
    let exponent = rest.count < 2 ? "0" + rest : String(rest)
    return "\(mantissa)e\(sign)\(exponent)"
}
