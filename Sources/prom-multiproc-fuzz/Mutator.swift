import MmapStore

/// SplitMix64: a small, fast, deterministic generator (the same seed gives the same inputs on
/// every machine and toolchain, unlike the standard library's random source).
struct SplitMix64 {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
    /// A number in `0..<bound` (bound > 0).
    mutating func below(_ bound: Int) -> Int { Int(next() % UInt64(bound)) }
    mutating func chance(_ oneIn: Int) -> Bool { below(oneIn) == 0 }
}

/// The seeded random-mutation driver: every input is derived from `(seed, iteration)` alone.
///
/// Mutations are those that find reader bugs in length-prefixed formats: bit flips, random
/// bytes, insertions and deletions, truncation, splicing two seeds, and tweaks of the fields
/// that hold lengths (the header's `used`, each entry's key length) to boundary values, plus
/// JSON-aware edits inside keys (quotes, backslashes, `\u` escapes, surrogates, UTF-8).
enum Mutator {
    static let interesting32: [Int32] = [0, 1, 3, 4, 7, 8, 9, 15, 16, 17, 23, 24, 255, 256, 4095, 4096, 65_535, 65_536, 65_537,
                                         0x7FFF_FFFF, -1, -2, -8, Int32.min, 0x7FFF_FFF8, 0x4000_0000]
    static let tokens: [[UInt8]] = ["\"", "\\", "\\u", "\\ud800", "\\udc00", "\\ud83d\\ude00", "\\u0000", "\\n", "\\/",
                                     "{", "}", "[", "]", ",", ":", " ", "\t", "\u{00}", "\u{7F}", "é", "\u{1F600}",
                                     "\\uZZZZ", "\\x", "\"a\": \"b\"", ", \"le\": \"0.5\""].map { Array($0.utf8) }
        + [[0xC3], [0xE2, 0x82], [0xF0, 0x9F, 0x98], [0xFF], [0xED, 0xA0, 0x80], [0xC0, 0xAF]]

    static func input(corpus: [[UInt8]], seed: UInt64, iteration: UInt64, maxLength: Int) -> [UInt8] {
        var rng = SplitMix64(seed: seed &* 0x2545_F491_4F6C_DD1D ^ iteration &* 0x9E37_79B9_7F4A_7C15)
        _ = rng.next()
        var b = corpus[rng.below(corpus.count)]
        let count = 1 + rng.below(rng.chance(4) ? 16 : 4)
        for _ in 0..<count { mutateOnce(&b, corpus: corpus, rng: &rng) }
        if b.count > maxLength { b.removeLast(b.count - maxLength) }
        return b
    }

    /// The offsets of the length fields of a well-formed prefix of `b`.
    static func entryOffsets(_ b: [UInt8]) -> [Int] {
        var out: [Int] = []
        var pos = 8
        while pos + 4 <= b.count {
            let length = Int(Int32(bitPattern: UInt32(b[pos]) | UInt32(b[pos + 1]) << 8 | UInt32(b[pos + 2]) << 16 | UInt32(b[pos + 3]) << 24))
            guard length >= 0, length < b.count else { break }
            out.append(pos)
            pos += FileFormat.entrySize(keyLength: length)
        }
        return out
    }

    static func put32(_ v: Int32, at: Int, in b: inout [UInt8]) {
        guard at >= 0, at + 4 <= b.count else { return }
        let u = UInt32(bitPattern: v)
        for i in 0..<4 { b[at + i] = UInt8(truncatingIfNeeded: u >> (8 * UInt32(i))) }
    }

    static func mutateOnce(_ b: inout [UInt8], corpus: [[UInt8]], rng: inout SplitMix64) {
        switch rng.below(14) {
        case 0 where !b.isEmpty:  // flip a bit
            let i = rng.below(b.count); b[i] ^= UInt8(1) << UInt8(rng.below(8))
        case 1 where !b.isEmpty:  // random byte
            b[rng.below(b.count)] = UInt8(truncatingIfNeeded: rng.next())
        case 2:  // insert random bytes
            let at = rng.below(b.count + 1)
            b.insert(contentsOf: (0..<(1 + rng.below(8))).map { _ in UInt8(truncatingIfNeeded: rng.next()) }, at: at)
        case 3 where !b.isEmpty:  // delete a range
            let at = rng.below(b.count); let n = min(b.count - at, 1 + rng.below(16))
            b.removeSubrange(at..<(at + n))
        case 4 where !b.isEmpty:  // truncate
            b.removeLast(rng.below(b.count) + 1 > b.count ? b.count : rng.below(b.count) + 1)
        case 5:  // header `used` to a boundary or to a value near the real size
            guard b.count >= 4 else { b += [0, 0, 0, 0]; return }
            let choices: [Int32] = interesting32 + [Int32(truncatingIfNeeded: b.count), Int32(truncatingIfNeeded: b.count + 1),
                                                   Int32(truncatingIfNeeded: b.count - 1), Int32(truncatingIfNeeded: b.count - 8),
                                                   Int32(truncatingIfNeeded: b.count + 8)]
            put32(choices[rng.below(choices.count)], at: 0, in: &b)
        case 6, 7:  // an entry's key length to a boundary or off by a little
            let offsets = entryOffsets(b)
            guard let at = offsets.isEmpty ? nil : offsets[rng.below(offsets.count)] else { return }
            let current = Int32(bitPattern: UInt32(b[at]) | UInt32(b[at + 1]) << 8 | UInt32(b[at + 2]) << 16 | UInt32(b[at + 3]) << 24)
            let v = rng.chance(2) ? interesting32[rng.below(interesting32.count)] : current &+ Int32(rng.below(33) - 16)
            put32(v, at: at, in: &b)
        case 8, 9:  // insert a JSON-ish token inside a key
            let offsets = entryOffsets(b)
            let t = tokens[rng.below(tokens.count)]
            if let at = offsets.isEmpty ? nil : offsets[rng.below(offsets.count)], at + 4 < b.count, rng.chance(3) == false {
                let length = Int(b[at]) | Int(b[at + 1]) << 8
                let into = at + 4 + rng.below(max(1, min(length, b.count - at - 4)))
                b.replaceSubrange(into..<min(b.count, into + (rng.chance(2) ? 0 : 1)), with: t)
                // Keep the length field consistent half of the time, so the decoder is reached.
                if rng.chance(2) { put32(Int32(truncatingIfNeeded: length + t.count), at: at, in: &b) }
            } else {
                b.insert(contentsOf: t, at: rng.below(b.count + 1))
            }
        case 10:  // splice with another seed
            let other = corpus[rng.below(corpus.count)]
            guard !other.isEmpty else { return }
            let from = rng.below(other.count); let n = min(other.count - from, 1 + rng.below(256))
            b.insert(contentsOf: other[from..<(from + n)], at: rng.below(b.count + 1))
        case 11 where b.count >= 8:  // header marker bytes
            let markers: [[UInt8]] = [[0, 0, 0, 0], [0x50, 0x4D, 0x50, 1], [0x50, 0x4D, 0x50, 2], [0x50, 0x4D, 0x50, 0], [0xFF, 0, 0, 0]]
            b.replaceSubrange(4..<8, with: markers[rng.below(markers.count)])
        case 12 where !b.isEmpty:  // duplicate a range (repeated entries)
            let at = rng.below(b.count); let n = min(b.count - at, 1 + rng.below(64))
            b.insert(contentsOf: Array(b[at..<(at + n)]), at: rng.below(b.count + 1))
        case 13:  // make the header's `used` match the length (a "valid" file with damaged entries)
            if b.count >= 4 { put32(Int32(truncatingIfNeeded: b.count), at: 0, in: &b) }
        default:
            if !b.isEmpty { b[rng.below(b.count)] = 0 }
        }
    }
}
