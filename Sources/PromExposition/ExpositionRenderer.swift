import Dispatch
import MmapStore
import PromMetrics

/// Renders metric families into the bytes of an exposition format, with no I/O.
///
/// The text output is byte for byte what prometheus_client 0.26.0 writes for the same
/// families: `prometheus_client.exposition.generate_latest` for
/// ``ExpositionFormat/prometheusText`` and
/// `prometheus_client.openmetrics.exposition.generate_latest` for
/// ``ExpositionFormat/openMetrics``. ``ExpositionFormat/protobuf`` writes the delimited
/// `io.prometheus.client.MetricFamily` messages that client_golang writes, including native
/// histograms (``MetricFamilySnapshot/nativeHistograms``), which the text formats cannot
/// express: they write a native series' classic part, or for a series with none its `_count`,
/// `_sum` and `le="+Inf"` bucket. Families are written in the order given; labels are written
/// sorted by name (by code point), as prometheus_client sorts them.
///
/// ```swift
/// var body: [UInt8] = []
/// let choice = NegotiatedExposition(acceptHeader: request.accept)
/// Exposition.render(families, format: choice.format, escaping: choice.escaping, into: &body)
/// // respond with body and choice.contentType
/// ```
///
/// One deliberate difference: in OpenMetrics, prometheus_client escapes *sample* names with
/// the label-name character set, so under `underscores` the `:` of `job:requests` becomes `_`
/// in the samples but not in `# TYPE` (and under `values` every sample name gets `U__`); the
/// samples then fall outside their family (the strict parser reads them as separate `unknown`
/// families). Here sample names are escaped with the metric-name rules used for the family
/// name, so the two always agree. For names without `:` under `underscores` and `allow-utf-8`
/// the bytes are identical.
public enum Exposition {
    /// Appends the exposition of `families` to `buffer`.
    ///
    /// The buffer is not cleared, so a server can keep one buffer across scrapes
    /// (`removeAll(keepingCapacity: true)` before each) and avoid growing it again.
    ///
    /// - Parameters:
    ///   - families: The families, in output order.
    ///   - format: Prometheus text 0.0.4, OpenMetrics 1.0.0 or protobuf.
    ///   - escaping: How names outside the legacy character set are written.
    ///   - buffer: The buffer the bytes are appended to.
    public static func render(_ families: [MetricFamilySnapshot], format: ExpositionFormat,
                              escaping: NameEscaping = .underscores, into buffer: inout [UInt8]) {
        write(families, format: format, escaping: escaping, log: nil).append(to: &buffer)
    }

    /// The exposition of `families`, in pieces; with a `log` (text formats only), where each
    /// sample's value went in the joined bytes (``ExpositionCache``).
    ///
    /// With `threads` above one and enough samples, the families are cut into that many pieces
    /// of about equal cost (``RenderPiece``), rendered at once on as many threads: every sample
    /// line depends only on its sample and its family, so the joined bytes and the log are
    /// those of one thread. `minimumPieceLines` keeps small expositions on one thread (nil:
    /// the format's, ``RenderPiece/minimumLines(for:)``).
    static func write(_ families: [MetricFamilySnapshot], format: ExpositionFormat, escaping: NameEscaping,
                      log: UnsafeMutablePointer<ValueLog>?, threads: Int = 1,
                      minimumPieceLines: Int? = nil) -> RenderedPieces {
        let pieces = RenderPiece.cut(families, format: format, into: threads,
                                     minimumLines: minimumPieceLines ?? RenderPiece.minimumLines(for: format))
        return write(families, pieces: pieces, format: format, escaping: escaping, log: log, room: nil)
    }

    /// The exposition of `families` as one array, rendered as ``write(_:format:escaping:log:threads:minimumPieceLines:)``
    /// renders it: the array has room for what every piece is expected to take, each piece is
    /// written in place in its share of it, and each after the first is then moved down to
    /// follow the one before. (Copied from a buffer of its own, a piece's bytes went into
    /// memory never touched before, a page fault every 4 KiB, on the joining thread alone:
    /// that made a render on two threads slower than on one.) Where a piece outgrows its
    /// share, the pieces are joined from where they are, as before.
    static func bytes(_ families: [MetricFamilySnapshot], format: ExpositionFormat, escaping: NameEscaping,
                      log: UnsafeMutablePointer<ValueLog>?, threads: Int = 1,
                      minimumPieceLines: Int? = nil) -> [UInt8] {
        let pieces = RenderPiece.cut(families, format: format, into: threads,
                                     minimumLines: minimumPieceLines ?? RenderPiece.minimumLines(for: format))
        let room = pieces.reduce(0) { $0 + capacity(of: $1, in: families) }
        var joined: [UInt8]?
        let inPlace = [UInt8](unsafeUninitializedCapacity: room) { buffer, initialized in
            let rendered = write(families, pieces: pieces, format: format, escaping: escaping, log: log, room: buffer)
            if let end = rendered.joinInPlace(buffer) {
                initialized = end
            } else {
                joined = rendered.bytes()
                initialized = 0
            }
        }
        return joined ?? inPlace
    }

    /// The bytes a writer of `piece` of `families` starts with room for: 80 a line (a sample,
    /// a family's header, four per native histogram).
    private static func capacity(of piece: RenderPiece, in families: [MetricFamilySnapshot]) -> Int {
        var lines = sampleLines(of: piece, in: families)
        for f in piece.start.family..<min(piece.end.family + 1, families.count) { lines += 1 + families[f].nativeHistograms.count * 4 }
        return lines * 80 + 8
    }

    /// The samples of `families` that `piece` covers.
    private static func sampleLines(of piece: RenderPiece, in families: [MetricFamilySnapshot]) -> Int {
        var lines = 0
        for f in piece.start.family..<min(piece.end.family + 1, families.count) {
            lines += piece.samples(of: f, count: families[f].samples.count).count
        }
        return lines
    }

    /// `pieces` of `families` rendered, each written in place in its share of `room`, where
    /// given (``ByteWriter/init(inPlace:)``): the shares are the pieces' capacities, in order.
    private static func write(_ families: [MetricFamilySnapshot], pieces: [RenderPiece], format: ExpositionFormat,
                              escaping: NameEscaping, log: UnsafeMutablePointer<ValueLog>?,
                              room: UnsafeMutableBufferPointer<UInt8>?) -> RenderedPieces {
        // Native histograms write samples made while rendering, whose values are not logged.
        if families.contains(where: { !$0.nativeHistograms.isEmpty }) { log?.pointee.reusable = false }
        var out = RenderedPieces(count: pieces.count, logged: log != nil)
        if pieces.count == 1 {
            out.writers.initialize(to: write(families, piece: pieces[0], format: format, escaping: escaping, log: log,
                                             storage: room))
        } else {
            var shares: [Range<Int>] = []
            if let room {
                var start = 0
                for piece in pieces {
                    let end = Swift.min(room.count, start + capacity(of: piece, in: families))
                    shares.append(start..<end)
                    start = end
                }
            }
            let shared = out.shared(room: room, shares: shares)
            DispatchQueue.concurrentPerform(iterations: pieces.count) { i in
                (shared.writers + i).initialize(to: write(families, piece: pieces[i], format: format, escaping: escaping,
                                                          log: shared.logs.map { $0 + i }, storage: shared.share(i)))
            }
            var offset = 0
            for i in 0..<pieces.count {
                if let logs = out.logs { log?.pointee.append(logs[i], shiftedBy: offset) }
                offset += out.writers[i].count
            }
        }
        out.initialized = true
        return out
    }

    /// The exposition of the part of `families` that `piece` covers, written in place at the
    /// start of `storage` where given (``ByteWriter/init(inPlace:)``).
    private static func write(_ families: [MetricFamilySnapshot], piece: RenderPiece, format: ExpositionFormat,
                              escaping: NameEscaping, log: UnsafeMutablePointer<ValueLog>?,
                              storage: UnsafeMutableBufferPointer<UInt8>?) -> ByteWriter {
        var writer: ByteWriter
        if let storage {
            writer = ByteWriter(inPlace: storage)
        } else {
            writer = ByteWriter(capacity: capacity(of: piece, in: families))
        }
        writer.valueLog = log
        if let log {
            // A slot per sample line: reserved at once, the log is not copied as it grows.
            log.pointee.slots.reserveCapacity(log.pointee.slots.count + sampleLines(of: piece, in: families))
        }
        // Label pairs written in this piece, copied where they come again (text formats only).
        var labels = WrittenLabels(caching: format != .protobuf)
        for f in piece.start.family..<min(piece.end.family + 1, families.count) {
            let family = families[f]
            let samples = piece.samples(of: f, count: family.samples.count)
            if samples.isEmpty && !(family.samples.isEmpty && f < piece.end.family) { continue }
            log?.pointee.family = f
            let head = samples.lowerBound == 0, tail = samples.upperBound == family.samples.count
            switch format {
            case .prometheusText:
                renderText(family, samples: samples, head: head, tail: tail, escaping: escaping, labels: &labels, into: &writer)
            case .openMetrics:
                renderOpenMetrics(family, samples: samples, head: head, tail: tail, escaping: escaping, labels: &labels, into: &writer)
            case .protobuf:
                log?.pointee.reusable = false
                ProtobufExposition.render(family, escaping: escaping, into: &writer)
            }
        }
        if format == .openMetrics && piece.end.family == families.count { writer.write("# EOF\n" as StaticString) }
        return writer
    }

    /// Returns the exposition of `families` as bytes.
    /// - Parameters:
    ///   - families: The families, in output order.
    ///   - format: Prometheus text 0.0.4, OpenMetrics 1.0.0 or protobuf.
    ///   - escaping: How names outside the legacy character set are written.
    /// - Returns: The bytes of the exposition (UTF-8 text for the text formats).
    public static func render(_ families: [MetricFamilySnapshot], format: ExpositionFormat,
                              escaping: NameEscaping = .underscores) -> [UInt8] {
        bytes(families, format: format, escaping: escaping, log: nil)
    }

    // MARK: - Prometheus text 0.0.4

    /// Samples that only OpenMetrics has; the text format moves them into gauges of their own
    /// after the family, in this (sorted) order, as prometheus_client does.
    private static let openMetricsOnlySuffixes: [StaticString] = ["_created", "_gcount", "_gsum"]

    /// The lines of `family` for `samples`: its header first when `head`, and when `tail`, what
    /// comes after its last sample (a native histogram's classic part, then the
    /// OpenMetrics-only samples of the whole family as gauges of their own).
    private static func renderText(_ family: MetricFamilySnapshot, samples range: Range<Int>, head: Bool, tail: Bool,
                                   escaping: NameEscaping, labels: inout WrittenLabels, into buffer: inout ByteWriter) {
        if head {
            let headerName: String
            let typeName: StaticString
            switch family.kind {
            case .counter: headerName = family.name + "_total"; typeName = "counter"
            case .gauge: headerName = family.name; typeName = "gauge"
            case .histogram: headerName = family.name; typeName = "histogram"
            case .summary: headerName = family.name; typeName = "summary"
            case .info: headerName = family.name + "_info"; typeName = "gauge"
            case .stateset: headerName = family.name; typeName = "gauge"
            case .unknown: headerName = family.name; typeName = "untyped"
            }
            appendTextHeader(name: headerName, help: family.help, type: typeName, escaping: escaping, into: &buffer)
        }

        // Which of the three suffixes appear (bit i for openMetricsOnlySuffixes[i]).
        var deferred: UInt8 = 0
        let familyLength = family.name.utf8.count
        family.samples.withUnsafeBufferPointer { samples in
            buffer.valueLog?.pointee.samples = samples
            defer { buffer.valueLog?.pointee.samples = UnsafeBufferPointer(start: nil, count: 0) }
            if let first = samples.baseAddress {
                // A family's samples share a few names (`_bucket`, `_count`, ...), each usually one
                // storage: a name is looked at where it changes, not on every line.
                var name = WrittenName()
                var suffix: Int?
                for index in range {
                    if !name.holds(first + index) {
                        name = WrittenName(first + index)
                        suffix = openMetricsOnlyIndex(samples[index].name, familyName: family.name, familyLength: familyLength)
                    }
                    if let suffix {
                        deferred |= 1 << suffix
                        continue
                    }
                    appendSample(first + index, escaping: escaping, name: &name, labels: &labels, into: &buffer)
                }
            }
            guard tail else { return }
            // A native-only histogram has no samples, and still its classic part.
            appendClassicFallback(family, escaping: escaping, into: &buffer)
            // The suffixes of the samples an earlier piece wrote.
            if let first = samples.baseAddress {
                var name = WrittenName()
                for index in 0..<range.lowerBound where !name.holds(first + index) {
                    name = WrittenName(first + index)
                    if let suffix = openMetricsOnlyIndex(samples[index].name, familyName: family.name, familyLength: familyLength) {
                        deferred |= 1 << suffix
                    }
                }
            }
            guard deferred != 0, let first = samples.baseAddress else { return }
            for (suffix, text) in openMetricsOnlySuffixes.enumerated() where deferred & (1 << suffix) != 0 {
                appendTextHeader(name: family.name + "\(text)", help: family.help, type: "gauge", escaping: escaping,
                                 into: &buffer)
                for index in samples.indices
                where openMetricsOnlyIndex(samples[index].name, familyName: family.name, familyLength: familyLength) == suffix {
                    appendSample(first + index, escaping: escaping, labels: &labels, into: &buffer)
                }
            }
        }
    }

    /// Whether `sampleName` is exactly `familyName` + one of ``openMetricsOnlySuffixes``
    /// (compared by bytes, as Python compares code points; `hasSuffix` would compare
    /// canonically equivalent characters).
    @inline(__always)
    private static func openMetricsOnlyIndex(_ sampleName: String, familyName: String, familyLength: Int) -> Int? {
        sampleName.withUTF8Bytes { sample in
            let extra = sample.count - familyLength
            guard extra == 5 || extra == 7 || extra == 8 else { return nil }  // _gsum, _gcount, _created
            // The suffix first: a histogram's `_bucket` samples are as long as `_gcount` ones,
            // and differ from them in the last bytes, not in the family name before.
            var found: Int?
            for (index, suffix) in openMetricsOnlySuffixes.enumerated() where suffix.utf8CodeUnitCount == extra {
                let tail = suffix.utf8Start
                var equal = true
                for i in 0 ..< extra where sample[familyLength + i] != tail[i] {
                    equal = false
                    break
                }
                if equal {
                    found = index
                    break
                }
            }
            guard let found else { return nil }
            let sameFamily = familyName.withUTF8Bytes { family in
                for i in 0 ..< familyLength where sample[i] != family[i] { return false }
                return true
            }
            return sameFamily ? found : nil
        }
    }

    private static func appendTextHeader(name: String, help: String, type: StaticString, escaping: NameEscaping,
                                         into buffer: inout ByteWriter) {
        buffer.write("# HELP " as StaticString)
        ExpositionNames.write(name, metric: true, escaping: escaping, to: &buffer)
        buffer.write(ExpositionBytes.space)
        buffer.writeEscaped(help, quote: false)
        buffer.write("\n# TYPE " as StaticString)
        ExpositionNames.write(name, metric: true, escaping: escaping, to: &buffer)
        buffer.write(ExpositionBytes.space)
        buffer.write(type)
        buffer.write(ExpositionBytes.newline)
    }

    // MARK: - OpenMetrics 1.0.0

    /// The lines of `family` for `samples`: its header first when `head`, and a native
    /// histogram's classic part after its last sample when `tail`.
    private static func renderOpenMetrics(_ family: MetricFamilySnapshot, samples range: Range<Int>, head: Bool, tail: Bool,
                                          escaping: NameEscaping, labels: inout WrittenLabels, into buffer: inout ByteWriter) {
        if head { appendOpenMetricsHeader(family, escaping: escaping, into: &buffer) }
        let withoutSum = family.kind == .histogram ? seriesWithNegativeBuckets(family) : []
        family.samples.withUnsafeBufferPointer { samples in
            buffer.valueLog?.pointee.samples = samples
            defer { buffer.valueLog?.pointee.samples = UnsafeBufferPointer(start: nil, count: 0) }
            guard let first = samples.baseAddress else { return }
            var name = WrittenName()
            for index in range {
                if !withoutSum.isEmpty, samples[index].name == family.name + "_sum" || samples[index].name == family.name + "_count",
                   withoutSum.contains(samples[index].labels.sorted { nameLess($0.name, $1.name) }) {
                    continue
                }
                if family.kind == .summary, isNegativeSummaryValue(samples[index], family: family.name) {
                    // Which samples are written depends on a value here, not only on names.
                    buffer.valueLog?.pointee.reusable = false
                    continue
                }
                appendSample(first + index, escaping: escaping, exemplar: true, name: &name, labels: &labels, into: &buffer)
            }
        }
        guard tail else { return }
        appendClassicFallback(family, escaping: escaping, into: &buffer)
    }

    /// The samples ``classicFallbackSamples(_:)`` makes for `family`. Made here and gone after,
    /// their labels are not kept (``WrittenLabels`` keeps only labels the families hold).
    private static func appendClassicFallback(_ family: MetricFamilySnapshot, escaping: NameEscaping,
                                              into buffer: inout ByteWriter) {
        var labels = WrittenLabels(caching: false)
        for sample in classicFallbackSamples(family) { appendSample(sample, escaping: escaping, labels: &labels, into: &buffer) }
    }

    private static func appendOpenMetricsHeader(_ family: MetricFamilySnapshot, escaping: NameEscaping,
                                                into buffer: inout ByteWriter) {
        let typeName: StaticString
        switch family.kind {
        case .counter: typeName = "counter"
        case .gauge: typeName = "gauge"
        case .histogram: typeName = "histogram"
        case .summary: typeName = "summary"
        case .info: typeName = "info"
        case .stateset: typeName = "stateset"
        case .unknown: typeName = "unknown"
        }
        buffer.write("# HELP " as StaticString)
        ExpositionNames.write(family.name, metric: true, escaping: escaping, to: &buffer)
        buffer.write(ExpositionBytes.space)
        buffer.writeEscaped(family.help, quote: true)
        buffer.write("\n# TYPE " as StaticString)
        ExpositionNames.write(family.name, metric: true, escaping: escaping, to: &buffer)
        buffer.write(ExpositionBytes.space)
        buffer.write(typeName)
        buffer.write(ExpositionBytes.newline)
        if let unit = family.unit, !unit.isEmpty {
            buffer.write("# UNIT " as StaticString)
            ExpositionNames.write(family.name, metric: true, escaping: escaping, to: &buffer)
            buffer.write(ExpositionBytes.space)
            buffer.write(unit)
            buffer.write(ExpositionBytes.newline)
        }
    }

    /// Whether `sample` is a negative quantile or `_sum` of summary `family`: OpenMetrics 1.0
    /// (section Summary) makes both non-negative (prometheus_client's strict parser refuses
    /// "Quantile values cannot be negative" and "Counter-like samples cannot be negative"), so
    /// the OpenMetrics body leaves them out; text 0.0.4 and protobuf keep them.
    private static func isNegativeSummaryValue(_ sample: Sample, family: String) -> Bool {
        sample.value < 0 && (sample.name == family || sample.name == family + "_sum")
    }

    /// The label sets (without `le`) of a histogram's series that have a bucket with a negative
    /// bound. OpenMetrics 1.0 forbids their `_sum` (section Histogram), and a `_count` appears
    /// if and only if the `_sum` does (section Text format, Histogram), so both are left out;
    /// the count remains the `+Inf` bucket. prometheus_client's writer emits them and its own
    /// strict parser then rejects the body. Empty, without allocating, for the usual histogram
    /// whose bounds are all positive.
    private static func seriesWithNegativeBuckets(_ family: MetricFamilySnapshot) -> Set<[Label]> {
        var out: Set<[Label]> = []
        let bucketName = family.name + "_bucket"
        for sample in family.samples where sample.name == bucketName {
            guard let le = sample.labels.first(where: { $0.name == "le" }), le.value.utf8.first == UInt8(ascii: "-"),
                  let bound = Double(le.value), bound < 0 else { continue }
            out.insert(sample.labels.filter { $0.name != "le" }.sorted { nameLess($0.name, $1.name) })
        }
        return out
    }

    // MARK: - Sample lines (the same in both formats)

    /// `name{label="value",...} value\n`, or `{"name",label="value",...} value\n` for a
    /// non-legacy name under `allow-utf-8`; with `exemplar` (OpenMetrics only), the sample's
    /// exemplar, if any, before the newline: ` # {trace_id="..."} value timestamp`.
    @inline(__always)
    private static func appendSample(_ sample: borrowing Sample, escaping: NameEscaping, exemplar: Bool = false,
                                     labels: inout WrittenLabels, into buffer: inout ByteWriter) {
        withUnsafePointer(to: sample) { appendSample($0, escaping: escaping, exemplar: exemplar, labels: &labels, into: &buffer) }
    }

    /// The same, for a sample in a buffer the caller holds for the duration of the call.
    ///
    /// The loops over a family's samples call this one. Passed by value (`borrowing` or not),
    /// each sample was copied out of the buffer into a temporary and destroyed after the call,
    /// about 190 instructions of retains and releases per sample, and the function was not
    /// inlined; by pointer it is inlined into the loop, and the fields are read in place.
    private static func appendSample(_ pointer: UnsafePointer<Sample>, escaping: NameEscaping, exemplar: Bool = false,
                                     labels: inout WrittenLabels, into buffer: inout ByteWriter) {
        var name = WrittenName()
        appendSample(pointer, escaping: escaping, exemplar: exemplar, name: &name, labels: &labels, into: &buffer)
    }

    /// The same, where `name` may hold the bytes the sample's name was written as on an
    /// earlier line of `buffer` (then they are copied, and the name is not looked at); if it
    /// does not, it is made to hold them.
    @inline(__always)
    private static func appendSample(_ pointer: UnsafePointer<Sample>, escaping: NameEscaping, exemplar: Bool = false,
                                     name: inout WrittenName, labels: inout WrittenLabels, into buffer: inout ByteWriter) {
        let braced: Bool
        if name.holds(pointer), let written = name.written {
            buffer.repeatBytes(written.bytes)
            braced = written.braced
        } else {
            let start = buffer.count
            braced = escaping == .allowUTF8 && !ExpositionNames.isLegacy(pointer.pointee.name, metric: true)
            if braced { buffer.write(ExpositionBytes.openBrace) }
            ExpositionNames.write(pointer.pointee.name, metric: true, escaping: escaping, to: &buffer)
            name = WrittenName(pointer, bytes: start..<buffer.count, braced: braced)
        }
        WrittenLabels.withLabels(of: pointer, offset: labels.labelsOffset) { sampleLabels in
            if braced {
                if !sampleLabels.isEmpty {
                    buffer.write(ExpositionBytes.comma)
                    appendLabels(sampleLabels, escaping: escaping, written: &labels, into: &buffer)
                }
                buffer.write(ExpositionBytes.closeBrace)
            } else if !sampleLabels.isEmpty {
                buffer.write(ExpositionBytes.openBrace)
                appendLabels(sampleLabels, escaping: escaping, written: &labels, into: &buffer)
                buffer.write(ExpositionBytes.closeBrace)
            }
        }
        buffer.write(ExpositionBytes.space)
        let valueStart = buffer.count
        buffer.writeValue(pointer.pointee.value)
        if let log = buffer.valueLog { log.pointee.record(pointer, start: valueStart, end: buffer.count) }
        if exemplar, let e = pointer.pointee.exemplar {
            // The exemplar's value and time change between scrapes, outside the logged slots.
            buffer.valueLog?.pointee.reusable = false
            buffer.write(" # {" as StaticString)
            var exemplarLabels = WrittenLabels(caching: false)
            e.labels.withUnsafeBufferPointer {
                appendLabels($0, escaping: escaping, exemplar: true, written: &exemplarLabels, into: &buffer)
            }
            buffer.write("} " as StaticString)
            buffer.writeValue(e.value)
            buffer.write(ExpositionBytes.space)
            // Shortest round-trip decimal (`1700000000.25`), as Python prints the time.
            buffer.write(String(e.timestamp))
        }
        buffer.write(ExpositionBytes.newline)
    }

    /// The labels sorted by name, comma-separated, without braces. A sample's label names
    /// follow prometheus_client's reserved-name rule (``ExpositionNames/writeTextLabelName(_:escaping:to:)``);
    /// an exemplar's (`exemplar`), which prometheus_client writes as they are, do not. Labels
    /// `written` already are copied from where they were (``WrittenLabels``).
    @inline(__always)
    private static func appendLabels(_ labels: UnsafeBufferPointer<Label>, escaping: NameEscaping, exemplar: Bool = false,
                                     written: inout WrittenLabels, into buffer: inout ByteWriter) {
        guard let first = labels.baseAddress else { return }
        if labels.count == 2 {
            // The usual unsorted case, a histogram bucket's `le` after one label: one
            // comparison. (Equal names keep their order, as the stable sort below keeps them.)
            let swap = written.secondSortsFirst(first)
            written.append(first + (swap ? 1 : 0), escaping: escaping, exemplar: exemplar, into: &buffer)
            buffer.write(ExpositionBytes.comma)
            written.append(first + (swap ? 0 : 1), escaping: escaping, exemplar: exemplar, into: &buffer)
            return
        }
        if isSortedByName(labels) {
            for index in labels.indices {
                if index != 0 { buffer.write(ExpositionBytes.comma) }
                written.append(first + index, escaping: escaping, exemplar: exemplar, into: &buffer)
            }
            return
        }
        // Typically a histogram bucket, whose `le` comes last: an insertion sort of the
        // indices, on the stack, puts it in place with a handful of comparisons. Stable, so
        // duplicate names (which a well-formed sample never has) keep their order.
        withUnsafeTemporaryAllocation(of: Int.self, capacity: labels.count) { order in
            for index in labels.indices {
                var position = index
                while position > 0 && nameLess(labels[index].name, labels[order[position - 1]].name) {
                    order[position] = order[position - 1]
                    position -= 1
                }
                order[position] = index
            }
            for position in labels.indices {
                if position != 0 { buffer.write(ExpositionBytes.comma) }
                written.append(first + order[position], escaping: escaping, exemplar: exemplar, into: &buffer)
            }
        }
    }

    @inline(__always)
    fileprivate static func appendLabel(_ label: borrowing Label, escaping: NameEscaping, exemplar: Bool,
                                        into buffer: inout ByteWriter) {
        if exemplar {
            ExpositionNames.write(label.name, metric: false, escaping: escaping, to: &buffer)
        } else {
            ExpositionNames.writeTextLabelName(label.name, escaping: escaping, to: &buffer)
        }
        buffer.write(ExpositionBytes.equals)
        buffer.write(ExpositionBytes.quote)
        buffer.writeEscaped(label.value, quote: true)
        buffer.write(ExpositionBytes.quote)
    }

    @inline(__always)
    private static func isSortedByName(_ labels: UnsafeBufferPointer<Label>) -> Bool {
        var index = 1
        while index < labels.count {
            if nameLess(labels[index].name, labels[index - 1].name) { return false }
            index += 1
        }
        return true
    }

    /// Code-point order, as Python's `sorted` on strings: UTF-8 byte order is code-point order.
    @inline(__always)
    static func nameLess(_ a: String, _ b: String) -> Bool {
        a.withUTF8Bytes { x in
            b.withUTF8Bytes { y in
                let n = min(x.count, y.count)
                var i = 0
                while i < n {
                    let p = x[i], q = y[i]
                    if p != q { return p < q }
                    i += 1
                }
                return x.count < y.count
            }
        }
    }
}

/// A sample name as a render wrote it last: its bits, and where its bytes lie in the buffer
/// being written.
///
/// Samples that share a name usually share its storage, so their names are recognised by
/// their bits (``SeriesLabels/identical(_:_:)``), read in place, and a name's checks (an
/// OpenMetrics-only suffix, a legacy name) and its writing are done once per run of samples
/// that share it: the next lines copy its bytes. Only the bits are kept, not the name: the
/// samples compared are the families', whose names live as long as the render, and a copy of
/// the name retained and released its storage, which every thread of a cut render shares,
/// on every line (two threads' atomic updates of one reference count made a render on two
/// threads slower than on one).
struct WrittenName {
    private var bits: (UInt64, UInt64)?
    /// Where the name was written last, and whether in braces (a quoted name).
    private(set) var written: (bytes: Range<Int>, braced: Bool)?

    /// Holds no name.
    init() {}

    /// Holds the name of `sample`, not written yet.
    init(_ sample: UnsafePointer<Sample>) {
        bits = Self.bits(of: sample)
    }

    /// Holds the name of `sample`, written at `bytes`.
    init(_ sample: UnsafePointer<Sample>, bytes: Range<Int>, braced: Bool) {
        self.init(sample)
        written = (bytes, braced)
    }

    /// Whether `sample`'s name is the one held, bit for bit (false says nothing).
    @inline(__always)
    func holds(_ sample: UnsafePointer<Sample>) -> Bool {
        guard let bits, let other = Self.bits(of: sample) else { return false }
        return other == bits
    }

    /// The bits of `sample`'s name, read where the sample holds it (nil where a `String` is not
    /// two words).
    @inline(__always)
    private static func bits(of sample: UnsafePointer<Sample>) -> (UInt64, UInt64)? {
        guard MemoryLayout<String>.size == 16, let offset = MemoryLayout<Sample>.offset(of: \Sample.name) else { return nil }
        return UnsafeRawPointer(sample).loadUnaligned(fromByteOffset: offset, as: (UInt64, UInt64).self)
    }
}

/// The labels one piece of an exposition wrote (`name="value"`), by the bits of their two
/// strings, so that a label met again is copied from where it was written and its strings
/// are not looked at: a histogram's buckets repeat their series' labels line after line and
/// their bounds series after series. Looking at a string (its bytes, its order against
/// another) retains and releases it: 10.3 M of the 27.0 M instructions of a text render of
/// 27,000 lines, 64 workers' histograms and counters, before labels were kept.
///
/// Equal bits are equal strings: a small string holds its bytes in its bits, a large one the
/// address of its storage, which the families rendered keep alive (and unchanged) for the
/// whole render. So only labels of samples the families hold are kept: a sample made during
/// the render, once gone, could leave its address to another string of the same length.
/// The bytes a label is written as depend on its strings, the escaping and whether it is an
/// exemplar's; a piece has one escaping, and exemplar labels are not kept.
struct WrittenLabels: ~Copyable {
    private typealias Bits = (UInt64, UInt64, UInt64, UInt64)
    /// Slots, each the last label whose bits map to it; a power of two.
    private static let slotCount = 64
    /// Per slot, a label's bits (all zero: none; no string is two zero words) and where its
    /// bytes lie in the writer; nil where labels are not kept.
    private let keys: UnsafeMutablePointer<Bits>?
    private let ranges: UnsafeMutablePointer<Range<Int>>?
    /// The names of the last two labels ordered, and whether the second sorts first.
    private var pairNames: Bits = (0, 0, 0, 0)
    private var pairSwapped = false

    /// Whether a label is its name's two words, then its value's.
    private static let layoutKnown: Bool = {
        guard MemoryLayout<String>.size == 16, MemoryLayout<Label>.size == 32 else { return false }
        let label = Label("name", "a value longer than fifteen bytes")
        let bits = withUnsafeBytes(of: label) { $0.loadUnaligned(as: Bits.self) }
        let name = unsafeBitCast(label.name, to: (UInt64, UInt64).self)
        let value = unsafeBitCast(label.value, to: (UInt64, UInt64).self)
        return bits == (name.0, name.1, value.0, value.1)
    }()

    /// Where a sample holds its labels' array, when an array is one reference to its storage,
    /// which holds the count 16 bytes in and the elements from 32 on (checked on a sample of
    /// known labels); nil where not.
    private static let sampleLabelsOffset: Int? = {
        guard MemoryLayout<[Label]>.size == 8, let offset = MemoryLayout<Sample>.offset(of: \Sample.labels) else { return nil }
        func inPlace(_ labels: [Label]) -> Bool {
            withUnsafePointer(to: Sample(name: "n", labels: labels, value: 0)) { sample in
                let storage = UnsafeRawPointer(sample).load(fromByteOffset: offset, as: UnsafeRawPointer.self)
                guard storage.load(fromByteOffset: 16, as: Int.self) == labels.count else { return false }
                return labels.withUnsafeBufferPointer { $0.isEmpty || UnsafeRawPointer($0.baseAddress) == storage + 32 }
            }
        }
        let labels = [Label("a", "b"), Label("a name longer than fifteen bytes", "c"), Label("le", "+Inf")]
        return inPlace(labels) && inPlace([]) && inPlace(Array(labels.prefix(1))) ? offset : nil
    }()
    /// ``sampleLabelsOffset``, read once a piece.
    let labelsOffset = WrittenLabels.sampleLabelsOffset

    /// Calls `body` with the labels of `sample`, read in place through `offset` (see
    /// ``sampleLabelsOffset``) where given, else through the array.
    ///
    /// Read through the array (`sample.pointee.labels`), every line retained and released it:
    /// an atomic update of a reference count in memory the merging thread wrote, which a
    /// render thread on another core must first take over. A render on two threads was no
    /// faster than on one. The sample outlives the call.
    @inline(__always)
    static func withLabels<R>(of sample: UnsafePointer<Sample>, offset: Int?,
                              _ body: (UnsafeBufferPointer<Label>) -> R) -> R {
        guard let offset else { return sample.pointee.labels.withUnsafeBufferPointer(body) }
        let storage = UnsafeRawPointer(sample).load(fromByteOffset: offset, as: UnsafeRawPointer.self)
        let count = storage.load(fromByteOffset: 16, as: Int.self)
        return body(UnsafeBufferPointer(start: (storage + 32).assumingMemoryBound(to: Label.self), count: count))
    }

    /// Keeps labels where `caching` and a label is two two-word strings, else writes each.
    init(caching: Bool) {
        guard caching, Self.layoutKnown else {
            keys = nil
            ranges = nil
            return
        }
        let keys = UnsafeMutablePointer<Bits>.allocate(capacity: Self.slotCount)
        keys.initialize(repeating: (0, 0, 0, 0), count: Self.slotCount)
        let ranges = UnsafeMutablePointer<Range<Int>>.allocate(capacity: Self.slotCount)
        ranges.initialize(repeating: 0..<0, count: Self.slotCount)
        self.keys = keys
        self.ranges = ranges
    }

    deinit {
        keys?.deallocate()
        ranges?.deallocate()
    }

    /// Writes `label`, a sample's (not `exemplar`) copied from where this piece wrote it last.
    @inline(__always)
    mutating func append(_ label: UnsafePointer<Label>, escaping: NameEscaping, exemplar: Bool, into buffer: inout ByteWriter) {
        guard let keys, let ranges, !exemplar else {
            Exposition.appendLabel(label.pointee, escaping: escaping, exemplar: exemplar, into: &buffer)
            return
        }
        let bits = UnsafeRawPointer(label).load(as: Bits.self)
        var h = (bits.0 ^ bits.2) &* 0x9E37_79B9_7F4A_7C15 ^ (bits.1 ^ bits.3)
        h = (h ^ (h >> 29)) &* 0xBF58_476D_1CE4_E5B9
        let slot = Int(truncatingIfNeeded: h >> 58) & (Self.slotCount - 1)
        if keys[slot] == bits {
            buffer.repeatBytes(ranges[slot])
            return
        }
        let start = buffer.count
        Exposition.appendLabel(label.pointee, escaping: escaping, exemplar: false, into: &buffer)
        keys[slot] = bits
        ranges[slot] = start..<buffer.count
    }

    /// Whether the second of the two labels at `labels` sorts before the first, by name;
    /// decided once for each pair of names that comes again.
    @inline(__always)
    mutating func secondSortsFirst(_ labels: UnsafePointer<Label>) -> Bool {
        guard keys != nil else { return Exposition.nameLess(labels[1].name, labels[0].name) }
        let raw = UnsafeRawPointer(labels)
        let names: Bits = (raw.load(as: UInt64.self), raw.load(fromByteOffset: 8, as: UInt64.self),
                           raw.load(fromByteOffset: 32, as: UInt64.self), raw.load(fromByteOffset: 40, as: UInt64.self))
        if names == pairNames { return pairSwapped }
        pairSwapped = Exposition.nameLess(labels[1].name, labels[0].name)
        pairNames = names
        return pairSwapped
    }
}

/// An exposition in pieces (``Exposition/write(_:format:escaping:log:threads:minimumPieceLines:)``),
/// joined by one copy into the caller's bytes, or moved down in place where each was written
/// in its share of them (``Exposition/bytes(_:format:escaping:log:threads:minimumPieceLines:)``).
struct RenderedPieces: ~Copyable {
    /// One writer per piece, in order; each thread of a cut render initializes its own.
    fileprivate let writers: UnsafeMutablePointer<ByteWriter>
    /// One log per piece, for a logged render of several pieces.
    fileprivate let logs: UnsafeMutablePointer<ValueLog>?
    fileprivate let count: Int
    fileprivate var initialized = false

    fileprivate init(count: Int, logged: Bool) {
        self.count = count
        writers = .allocate(capacity: count)
        if logged && count > 1 {
            let logs = UnsafeMutablePointer<ValueLog>.allocate(capacity: count)
            logs.initialize(repeating: ValueLog(), count: count)
            self.logs = logs
        } else {
            logs = nil
        }
    }

    deinit {
        if initialized { writers.deinitialize(count: count) }
        writers.deallocate()
        if let logs {
            logs.deinitialize(count: count)
            logs.deallocate()
        }
    }

    /// The storage, for the threads of a cut render (`@unchecked Sendable`: no two threads
    /// touch one index or one share, and nothing reads it before every thread is done).
    fileprivate struct Shared: @unchecked Sendable {
        let writers: UnsafeMutablePointer<ByteWriter>
        let logs: UnsafeMutablePointer<ValueLog>?
        /// Where the pieces are written in place, if anywhere, and each one's share of it.
        let room: UnsafeMutableBufferPointer<UInt8>?
        let shares: [Range<Int>]

        /// Where piece `i` is written in place; nil where nowhere.
        func share(_ i: Int) -> UnsafeMutableBufferPointer<UInt8>? {
            guard let room, i < shares.count, !shares[i].isEmpty else { return nil }
            return UnsafeMutableBufferPointer(rebasing: room[shares[i]])
        }
    }

    fileprivate func shared(room: UnsafeMutableBufferPointer<UInt8>?, shares: [Range<Int>]) -> Shared {
        Shared(writers: writers, logs: logs, room: room, shares: shares)
    }

    /// The number of bytes of all pieces.
    var byteCount: Int {
        var n = 0
        for i in 0..<count { n += writers[i].count }
        return n
    }

    /// Appends the pieces' bytes to `array`.
    func append(to array: inout [UInt8]) {
        array.reserveCapacity(array.count + byteCount)
        for i in 0..<count { writers[i].withBytes { array.append(contentsOf: $0) } }
    }

    /// Moves each piece after the first down in `buffer` to follow the one before; each was
    /// written in place in its share of `buffer` (the shares in order, each piece no longer
    /// than its share, so a piece moves only over its own share and the unused end of the
    /// ones before).
    /// - Returns: the end of the bytes in `buffer`; nil, having moved nothing, where a piece
    ///   is not in place (it outgrew its share).
    fileprivate func joinInPlace(_ buffer: UnsafeMutableBufferPointer<UInt8>) -> Int? {
        guard initialized, count > 0, let base = buffer.baseAddress else { return nil }
        for i in 0..<count { guard writers[i].isInPlace else { return nil } }
        return copyPieces(to: base)
    }

    /// The pieces' bytes, joined.
    func bytes() -> [UInt8] {
        let total = byteCount
        return [UInt8](unsafeUninitializedCapacity: total) { buffer, initialized in
            if let base = buffer.baseAddress { _ = copyPieces(to: base) }
            initialized = total
        }
    }

    /// Copies the pieces' bytes one after the other to `base` (room for them there), leaving
    /// a piece that lies there already; returns the offset after them. A memmove: a piece
    /// written in place in `base` may overlap where it goes.
    private func copyPieces(to base: UnsafeMutablePointer<UInt8>) -> Int {
        var offset = 0
        for i in 0..<count {
            writers[i].withBytes { piece in
                if let source = piece.baseAddress, UnsafeRawPointer(base + offset) != source {
                    UnsafeMutableRawPointer(base + offset).copyMemory(from: source, byteCount: piece.count)
                }
                offset += piece.count
            }
        }
        return offset
    }
}

/// A part of an exposition, rendered on a thread of its own (``Exposition/write(_:format:escaping:log:threads:minimumPieceLines:)``):
/// from position `start` up to `end`, where a position is a family and one of its samples.
///
/// A piece that starts at a family's first sample writes the family's header; the piece that
/// writes its last sample writes what follows it (text's OpenMetrics-only gauges, a native
/// histogram's classic part). Protobuf families, and families with native histograms, are
/// never cut.
struct RenderPiece: Sendable {
    /// A family's index and one of its samples' (0 is before the family's header).
    struct Position: Comparable, Sendable {
        var family: Int
        var sample: Int

        static func < (a: Position, b: Position) -> Bool { (a.family, a.sample) < (b.family, b.sample) }
    }

    var start: Position
    var end: Position

    /// Below this many lines a piece is not worth a thread of its own. A text line costs about
    /// 80 ns: below 32,768 a piece, waking a thread and reading samples another core built
    /// cost what the split saves (27,000 and 48,000 lines took as long on two threads as on
    /// one, 130,000 and 260,000 about 10% less). A protobuf line costs about twice as much:
    /// the 27,000 lines took 3.9 ms on two threads against 5.5 ms on one.
    static func minimumLines(for format: ExpositionFormat) -> Int {
        format == .protobuf ? 4096 : 32_768
    }

    /// All of `families`.
    static func whole(_ families: [MetricFamilySnapshot]) -> RenderPiece {
        RenderPiece(start: Position(family: 0, sample: 0), end: Position(family: families.count, sample: 0))
    }

    /// The samples of family `f` (of `count`) that the piece writes.
    func samples(of f: Int, count: Int) -> Range<Int> {
        let lower = f == start.family ? start.sample : 0
        return lower..<(f == end.family ? Swift.max(lower, end.sample) : count)
    }

    /// `families` in at most `threads` pieces of about the same cost, each at least
    /// `minimumLines` lines long; one piece (the whole) when they are fewer.
    ///
    /// A line costs about as much as its labels: a histogram bucket's (two labels and `le`'s
    /// sorting) about twice a one-label counter's. So a family's samples weigh one more than
    /// its first sample's labels each, and its header one.
    static func cut(_ families: [MetricFamilySnapshot], format: ExpositionFormat, into threads: Int,
                    minimumLines: Int) -> [RenderPiece] {
        var lines = 0
        for family in families { lines += 1 + family.samples.count + family.nativeHistograms.count * 4 }
        let n = Swift.min(threads, lines / Swift.max(1, minimumLines))
        guard n > 1 else { return [whole(families)] }
        func perSample(_ family: MetricFamilySnapshot) -> Int { 1 + (family.samples.first?.labels.count ?? 0) }
        func weight(_ family: MetricFamilySnapshot) -> Int {
            1 + (family.samples.count + family.nativeHistograms.count * 4) * perSample(family)
        }
        var total = 0
        for family in families { total += weight(family) }
        let target = (total + n - 1) / n
        var starts = [Position(family: 0, sample: 0)]
        var before = 0
        var k = 1
        for (f, family) in families.enumerated() {
            let w = weight(family)
            // Every cut that falls inside this family: before a sample when the family may be
            // cut, after the family otherwise.
            while k < n, before + w > k * target {
                let sample = (k * target - before - 1) / perSample(family)
                var at = Position(family: f + 1, sample: 0)
                if format != .protobuf, family.nativeHistograms.isEmpty, sample < family.samples.count {
                    at = Position(family: f, sample: Swift.max(0, sample))
                }
                if let last = starts.last, at > last, at.family < families.count { starts.append(at) }
                k += 1
            }
            before += w
        }
        var pieces: [RenderPiece] = []
        for (i, start) in starts.enumerated() {
            pieces.append(RenderPiece(start: start, end: i + 1 < starts.count ? starts[i + 1] : Position(family: families.count, sample: 0)))
        }
        return pieces
    }
}
