import PromMetrics
import Foundation
import Testing
import TestSupport

@Suite("GoFloat formats values as prometheus_client's floatToGoString")
struct ExpositionFloatFormatTests {
    /// Expected strings produced by prometheus_client 0.26.0 itself, generated once with
    /// `the interop venv's python (`$PROM_MULTIPROC_PYTHON`)` running, for each value `v` below,
    /// `print(f'({v}, "{prometheus_client.utils.floatToGoString(float(v))}"),')`.
    /// (`9.999999999999999e+22` is the same double as `1e23`, hence `1e+23`.)
    static let pythonTable: [(Double, String)] = [
        (0.0, "0.0"),
        (-0.0, "-0.0"),
        (1.0, "1.0"),
        (-1.0, "-1.0"),
        (10.0, "10.0"),
        (0.5, "0.5"),
        (0.005, "0.005"),
        (0.1, "0.1"),
        (0.25, "0.25"),
        (2.5, "2.5"),
        (5.0, "5.0"),
        (7.5, "7.5"),
        (1e-05, "1e-05"),
        (1.5e-05, "1.5e-05"),
        (0.0001, "0.0001"),
        (0.001, "0.001"),
        (100000.0, "100000.0"),
        (999999.0, "999999.0"),
        (1e6, "1e+06"),
        (1.5e6, "1.5e+06"),
        (1234567.0, "1.234567e+06"),
        (1234567.5, "1.2345675e+06"),
        (12345678.9, "1.23456789e+07"),
        (1e7, "1e+07"),
        (1e15, "1e+15"),
        (1e16, "1e+16"),
        (1.5e16, "1.5e+16"),
        (9007199254740992.0, "9.007199254740992e+15"),
        (9007199254740993.0, "9.007199254740992e+15"),
        (1e17, "1e+17"),
        (1e21, "1e+21"),
        (1e22, "1e+22"),
        (1e23, "1e+23"),
        (1e100, "1e+100"),
        (1.7976931348623157e+308, "1.7976931348623157e+308"),
        (.leastNonzeroMagnitude, "5e-324"),  // 5e-324
        (2.2250738585072014e-308, "2.2250738585072014e-308"),
        (-1e6, "-1000000.0"),
        (-1234567.0, "-1234567.0"),
        (-1e-05, "-1e-05"),
        (0.30000000000000004, "0.30000000000000004"),
        (0.3333333333333333, "0.3333333333333333"),
        (0.6666666666666666, "0.6666666666666666"),
        (100.0, "100.0"),
        (123456.789, "123456.789"),
        (3.14159, "3.14159"),
        (4.35, "4.35"),
        (9007199254740991.0, "9.007199254740991e+15"),
        (9.223372036854776e+18, "9.223372036854776e+18"),
        (1e-07, "1e-07"),
        (1.23e-18, "1.23e-18"),
        (-1.5e16, "-1.5e+16"),
        (0.3, "0.3"),
        (9.999999999999999e+22, "1e+23"),
        (5e-05, "5e-05"),
        (0.000123, "0.000123"),
        (999999.9999999999, "999999.9999999999"),
        (1000000.0000000001, "1.0000000000000001e+06"),
        (0.1e-3, "0.0001"),
        (60.0, "60.0"),
        (300.0, "300.0"),
        (1e-3, "0.001"),
        (2.5e-4, "0.00025"),
        (.infinity, "+Inf"),
        (-.infinity, "-Inf"),
        (.nan, "NaN")
    ]

    @Test("every value of the table formats as Python formats it", arguments: pythonTable.indices)
    func matchesPythonTable(index: Int) {
        let (value, expected) = Self.pythonTable[index]
        #expect(GoFloat.format(value) == expected, "value bits 0x\(String(value.bitPattern, radix: 16))")
    }

    @Test func byteVariantAppendsTheSameBytesAfterExistingContent() {
        for (value, expected) in Self.pythonTable {
            var buffer: [UInt8] = Array("x ".utf8)
            GoFloat.append(value, to: &buffer)
            #expect(buffer == Array("x ".utf8) + Array(expected.utf8))
        }
    }

    @Test func negativeNaNIsStillNaN() {
        #expect(GoFloat.format(-Double.nan) == "NaN")
        #expect(GoFloat.format(Double(bitPattern: 0x7FF0_0000_0000_0001)) == "NaN")  // signalling NaN
    }

    /// Live differential: thousands of doubles of every shape (random bit patterns, integers,
    /// short decimals, powers of ten and their neighbours) formatted by the real
    /// `floatToGoString` and by `GoFloat`. Values travel as bit patterns, so no parsing is involved.
    @Test func matchesLivePythonOnManyValues() throws {
        let python = try ExternalTool.python.path()
        var generator = ExpositionRandom(seed: 0x5EED_F10A7)
        var values: [Double] = []
        for _ in 0 ..< 4000 {
            let bits = generator.next()
            let value = Double(bitPattern: bits)
            values.append(value)
        }
        for _ in 0 ..< 2000 { values.append(Double(Int64(bitPattern: generator.next()) >> Int64(generator.next() % 64))) }
        for _ in 0 ..< 2000 {
            let digits = Double(generator.next() % 100_000)
            let exponent = Int(generator.next() % 40) - 20
            values.append(digits * pow(10, Double(exponent)))
        }
        for exponent in -330 ... 310 {
            let p = pow(10, Double(exponent))
            values += [p, p.nextUp, p.nextDown, -p, 1.5 * p]
        }
        values += [0, -0.0, .infinity, -.infinity, .nan, .leastNonzeroMagnitude, .greatestFiniteMagnitude,
                   9_007_199_254_740_992, 9_007_199_254_740_991, 999_999.5, 1_000_000.5]
        let input = values.map { String($0.bitPattern, radix: 16) }.joined(separator: "\n")
        let script = """
            import sys, struct
            from prometheus_client.utils import floatToGoString
            for line in sys.stdin.read().split():
                print(floatToGoString(struct.unpack('<d', int(line, 16).to_bytes(8, 'little'))[0]))
            """
        let result = try run(python, ["-c", script], input: input)
        #expect(result.status == 0, "\(result.stderr)")
        let expected = result.stdout.split(separator: "\n", omittingEmptySubsequences: false).dropLast()
        try #require(expected.count == values.count)
        var mismatches: [String] = []
        for (value, python) in zip(values, expected) where GoFloat.format(value) != python {
            mismatches.append("0x\(String(value.bitPattern, radix: 16)): Swift \(GoFloat.format(value)), Python \(python)")
        }
        #expect(mismatches.isEmpty, "\(mismatches.prefix(20).joined(separator: "\n"))")
    }
}

/// A small deterministic generator (ExpositionRandom), so a failing value can be reproduced.
struct ExpositionRandom: RandomNumberGenerator {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
