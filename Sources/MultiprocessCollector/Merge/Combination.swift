import MmapStore

/// How the values one series has in several files combine (python-format.md §4): the one
/// definition a scrape and a compaction both apply.
enum Combination: Equatable {
    /// Counters, summaries, histograms, and `sum`/`livesum` gauges: added.
    case sum
    /// `min`/`livemin` gauges: the smallest; the first value read seeds it (so an entry never
    /// set counts as its initial 0).
    case min
    /// `max`/`livemax` gauges: the largest, seeded the same way.
    case max
    /// `mostrecent`/`livemostrecent` gauges: the value with the largest timestamp above 0; on
    /// equal timestamps the first read; nothing when every timestamp is 0 (never set).
    case mostRecent
    /// `all`/`liveall` gauges: one series per process, so within it the last value read.
    case last

    /// The combination of a gauge mode.
    init(_ mode: GaugeMode) {
        switch mode {
        case .sum, .livesum: self = .sum
        case .min, .livemin: self = .min
        case .max, .livemax: self = .max
        case .mostrecent, .livemostrecent: self = .mostRecent
        case .all, .liveall: self = .last
        }
    }

    /// The combination of the values in files of `kind`.
    init(_ kind: FileKind) {
        switch kind {
        case .counter, .summary, .histogram: self = .sum
        case .gauge(let mode): self.init(mode)
        }
    }

    /// Combines one more value `v` (stored with timestamp `t`) into a series' accumulator:
    /// `value` and `stamp` start at 0, `seen` (whether the series has a value) at false.
    @inline(__always)
    func apply(_ v: Double, timestamp t: Double, to value: inout Double, stamp: inout Double, seen: inout Bool) {
        switch self {
        case .sum:
            value += v
            seen = true
        case .min:
            if !seen { value = v; seen = true } else if v < value { value = v }
        case .max:
            if !seen { value = v; seen = true } else if v > value { value = v }
        case .mostRecent:
            if stamp < t {
                value = v
                stamp = t
                seen = true
            }
        case .last:
            value = v
            seen = true
        }
    }
}
