import SystemCalls

/// Whether `_created` series are exported, as prometheus_client decides it.
package enum CreatedSeries {
    /// Whether `PROMETHEUS_DISABLE_CREATED_SERIES` turns them off: `true`, `1` or `t` in any
    /// case, as prometheus_client reads it (`os.environ.get(...).lower() in ('true', '1', 't')`).
    package static func disabledByEnvironment(lookup: (String) -> String? = { Sys.environment($0) }) -> Bool {
        guard let value = lookup("PROMETHEUS_DISABLE_CREATED_SERIES") else { return false }
        return ["true", "1", "t"].contains(value.lowercased())
    }
}
