import PromMetrics
import SystemCalls

/// Renders the text formats scrape after scrape, writing only the values again while the
/// series stay the same.
///
/// A `/metrics` endpoint in a steady state exports the same families with the same samples on
/// every scrape; only the values change. Writing names and labels (checking each byte for
/// escapes, sorting labels) is most of a text exposition's cost. The cache keeps the last body
/// of each format and where each sample's value lies in it. When the next families have the
/// same names, types, help texts and units, and the same samples (names and labels, in the
/// same order), the next body is the last one with the new values written in their places;
/// otherwise the families are rendered in full, and that body is kept. The bytes are
/// `Exposition.render`'s either way.
///
/// Rendered in full every time, and not kept: protobuf; OpenMetrics with exemplars (their
/// values and times lie outside the samples' values) or with a negative summary quantile or
/// `_sum` (left out of OpenMetrics, so which lines are written depends on a value); families
/// with native histograms.
///
/// Safe to call from several threads at once: a call takes the kept body of its format out
/// while it renders and puts its own back, so calls never wait for each other's rendering (a
/// call that finds nothing kept renders in full).
package final class ExpositionCache: Sendable {
    /// The last body of one format, and what it was rendered from.
    private struct Kept: Sendable {
        var escaping: NameEscaping
        var families: [MetricFamilySnapshot]
        var body: [UInt8]
        var slots: [ValueLog.Slot]
    }

    private struct State: Sendable {
        var kept: [ExpositionFormat: Kept] = [:]
        var reused = 0
    }

    private let state = Locked(State())
    /// The most threads a full render uses, and the fewest lines it gives a thread
    /// (``Exposition/write(_:format:escaping:log:threads:minimumPieceLines:)``).
    private let threads: Int
    private let minimumPieceLines: Int?

    /// Creates an empty cache.
    /// - Parameters:
    ///   - threads: the most threads a render in full uses (at least one): a large exposition
    ///     is cut into pieces rendered at once, with the same bytes.
    ///   - minimumPieceLines: the fewest lines worth a thread (nil: the format's,
    ///     ``RenderPiece/minimumLines(for:)``; tests cut small expositions with 1).
    package init(threads: Int = 1, minimumPieceLines: Int? = nil) {
        self.threads = Swift.max(1, threads)
        self.minimumPieceLines = minimumPieceLines
    }

    /// Renders made by writing new values into a kept body.
    package var reusedRenders: Int { state.withLock { $0.reused } }

    /// The exposition of `families`, as `Exposition.render(_:format:escaping:)` writes it.
    package func render(_ families: [MetricFamilySnapshot], format: ExpositionFormat,
                        escaping: NameEscaping = .underscores) -> [UInt8] {
        guard format != .protobuf else {
            return Exposition.bytes(families, format: format, escaping: escaping, log: nil, threads: threads,
                                    minimumPieceLines: minimumPieceLines)
        }
        let last = state.withLock { $0.kept.removeValue(forKey: format) }
        if let last, last.escaping == escaping, Self.sameSamples(last.families, families, format: format) {
            let next = Self.rewrite(last, values: families)
            state.withLock {
                $0.kept[format] = next
                $0.reused += 1
            }
            return next.body
        }
        var log = ValueLog()
        let body = withUnsafeMutablePointer(to: &log) { log in
            Exposition.bytes(families, format: format, escaping: escaping, log: log, threads: threads, minimumPieceLines: minimumPieceLines)
        }
        if log.reusable {
            let kept = Kept(escaping: escaping, families: families, body: body, slots: log.slots)
            state.withLock { $0.kept[format] = kept }
        }
        return body
    }

    /// Whether a body rendered from `old` is the body of `new` once its values are replaced:
    /// the same families and samples but for their values (and, in text 0.0.4, which has
    /// none, exemplars).
    ///
    /// Everything compares bytes (`String` equality would equate canonically equivalent
    /// names). Cheap when the series are the same: label arrays and long names the merge
    /// keeps between scrapes are the same storage, recognised before any byte is compared.
    static func sameSamples(_ old: [MetricFamilySnapshot], _ new: [MetricFamilySnapshot],
                            format: ExpositionFormat) -> Bool {
        guard old.count == new.count else { return false }
        for index in old.indices {
            let x = old[index], y = new[index]
            guard x.kind == y.kind, SeriesLabels.bytesEqual(x.name, y.name), SeriesLabels.bytesEqual(x.help, y.help),
                  SeriesLabels.bytesEqual(x.unit ?? "", y.unit ?? ""), (x.unit == nil) == (y.unit == nil),
                  x.nativeHistograms.isEmpty, y.nativeHistograms.isEmpty, x.samples.count == y.samples.count
            else { return false }
            // OpenMetrics writes exemplars, and leaves negative summary values out.
            let valuesMatter = format == .openMetrics
            let summary = y.kind == .summary
            let same = x.samples.withUnsafeBufferPointer { xs in
                y.samples.withUnsafeBufferPointer { ys in
                    for i in xs.indices {
                        guard SeriesLabels.identical(xs[i].name, ys[i].name) || SeriesLabels.bytesEqual(xs[i].name, ys[i].name),
                              SeriesLabels.identical(xs[i].labels, ys[i].labels)
                                  || SeriesLabels.bytesEqual(xs[i].labels, ys[i].labels)
                        else { return false }
                        if valuesMatter && (ys[i].exemplar != nil || (summary && ys[i].value < 0)) { return false }
                    }
                    return true
                }
            }
            if !same { return false }
        }
        return true
    }

    /// `last`'s body with the values of `families` (samples as `last.families`') written into
    /// its value slots. A value with the same bits as the last time keeps its bytes: they are
    /// copied with the text around them, not formatted again.
    private static func rewrite(_ last: Kept, values families: [MetricFamilySnapshot]) -> Kept {
        var slots = last.slots
        // Which values changed, in slot order; a family's slots are consecutive (families are
        // rendered one after the other), so each family's samples are reached once.
        var changed: [Double?] = Array(repeating: nil, count: slots.count)
        var k = 0
        while k < slots.count {
            let family = Int(slots[k].family)
            families[family].samples.withUnsafeBufferPointer { new in
                last.families[family].samples.withUnsafeBufferPointer { old in
                    while k < slots.count && Int(slots[k].family) == family {
                        let i = Int(slots[k].sample)
                        if new[i].value.bitPattern != old[i].value.bitPattern { changed[k] = new[i].value }
                        k += 1
                    }
                }
            }
        }
        let changes = changed.count { $0 != nil }
        // Nothing changed: the same bytes, shared.
        guard changes > 0 else { return Kept(escaping: last.escaping, families: families, body: last.body, slots: slots) }
        let capacity = last.body.count + changes * GoFloat.maximumLength
        let body = [UInt8](unsafeUninitializedCapacity: capacity) { out, written in
            guard let base = out.baseAddress else { return }
            last.body.withUnsafeBufferPointer { body in
                guard let old = body.baseAddress else { return }
                slots.withUnsafeMutableBufferPointer { slots in
                    // Bytes of the last body up to `copied` are written (up to `count` in the
                    // new one); `shift` is how far the new offsets are past the last ones.
                    var copied = 0, count = 0, shift = 0
                    for k in slots.indices {
                        guard let value = changed[k] else {
                            slots[k].start += shift
                            slots[k].end += shift
                            continue
                        }
                        let run = slots[k].start - copied
                        (base + count).initialize(from: old + copied, count: run)
                        count += run
                        copied = slots[k].end
                        slots[k].start = count
                        count += GoFloat.write(value, into: base + count)
                        slots[k].end = count
                        shift = count - copied
                    }
                    (base + count).initialize(from: old + copied, count: body.count - copied)
                    written = count + body.count - copied
                }
            }
        }
        return Kept(escaping: last.escaping, families: families, body: body, slots: slots)
    }
}

/// Where a text exposition wrote each sample line's value: the slots ``ExpositionCache``
/// writes new values into.
struct ValueLog {
    /// One sample line's value: the sample (its family's index, its index in the family's
    /// samples) and the bytes of the value in the body.
    struct Slot: Sendable {
        var family: Int32
        var sample: Int32
        var start: Int
        var end: Int
    }

    /// The slots, in the order the lines are written.
    var slots: [Slot] = []
    /// The family being written, and its samples.
    var family = 0
    var samples = UnsafeBufferPointer<Sample>(start: nil, count: 0)
    /// Whether the body depends only on the families' names, types, help texts, units and
    /// samples' names and labels, besides the logged values.
    var reusable = true

    /// Logs the value of `sample`, written at `start..<end`.
    mutating func record(_ sample: UnsafePointer<Sample>, start: Int, end: Int) {
        guard let first = samples.baseAddress, sample >= first, sample < first + samples.count,
              family <= Int(Int32.max), sample - first <= Int(Int32.max) else {
            // A sample made while rendering (a native histogram's classic fallback).
            reusable = false
            return
        }
        slots.append(Slot(family: Int32(family), sample: Int32(sample - first), start: start, end: end))
    }

    /// Adds the slots of `other`, a log of the piece written `offset` bytes into the body.
    mutating func append(_ other: ValueLog, shiftedBy offset: Int) {
        reusable = reusable && other.reusable
        if slots.isEmpty && offset == 0 {
            slots = other.slots
            return
        }
        slots.reserveCapacity(slots.count + other.slots.count)
        for slot in other.slots {
            slots.append(Slot(family: slot.family, sample: slot.sample, start: slot.start + offset, end: slot.end + offset))
        }
    }
}
