/// The samples a scrape asked for by name (`/metrics?name[]=a&name[]=b`), with
/// prometheus_client's `restricted_registry` rule: a sample is kept when its full name
/// (`requests_total`, `latency_bucket`, `build_info`) is listed; a family is kept when at
/// least one of its samples is, and then holds only those. The family name alone
/// (`requests` for a counter) selects nothing, as in prometheus_client.
///
/// Names are compared by their UTF-8 bytes, as Python compares code points (never by Swift
/// `String` equality, which equates canonically equivalent spellings).
package struct SampleNameFilter: Hashable, Sendable {
    /// The listed names, as UTF-8 bytes.
    private let names: Set<[UInt8]>

    /// A filter keeping the samples named in `names`.
    package init(_ names: some Sequence<String>) {
        self.names = Set(names.map { Array($0.utf8) })
    }

    /// Whether a sample named `name` is kept.
    package func keeps(sampleNamed name: String) -> Bool {
        names.contains(Array(name.utf8))
    }

    /// Whether a family named `family` may have a kept sample: some listed name starts with
    /// the family name (a sample name is the family name, or the family name and a suffix).
    /// A merge uses it to skip the other families before accumulating them.
    package func mayKeep(familyNamed family: String) -> Bool {
        let prefix = Array(family.utf8)
        return names.contains { $0.starts(with: prefix) }
    }

    /// The families restricted to the listed samples; families left with none are dropped.
    /// A histogram's native series (protobuf only) are kept with the family when its name,
    /// `_bucket`, `_count` or `_sum` is listed, since they stand for all of these.
    package func restrict(_ families: [MetricFamilySnapshot]) -> [MetricFamilySnapshot] {
        var out: [MetricFamilySnapshot] = []
        for family in families where mayKeep(familyNamed: family.name) || family.samples.contains(where: { keeps(sampleNamed: $0.name) }) {
            var kept = family
            var lastName: String?
            var lastKept = false
            kept.samples = family.samples.filter { sample in
                // Samples of one name come together: look each name up once per run.
                if let last = lastName, sample.name.utf8.elementsEqual(last.utf8) { return lastKept }
                lastName = sample.name
                lastKept = keeps(sampleNamed: sample.name)
                return lastKept
            }
            if !family.nativeHistograms.isEmpty {
                let standsFor = ["", "_bucket", "_count", "_sum"].contains { keeps(sampleNamed: family.name + $0) }
                if !standsFor { kept.nativeHistograms = [] }
            }
            if !kept.samples.isEmpty || !kept.nativeHistograms.isEmpty { out.append(kept) }
        }
        return out
    }
}
