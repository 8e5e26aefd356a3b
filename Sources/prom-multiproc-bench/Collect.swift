import PromMetrics

// `collect`: TODO once MultiprocessCollector lands on main.
func collectCommand(_ options: Options) throws {
    throw UsageError("collect: MultiprocessCollector is not available yet")
}
