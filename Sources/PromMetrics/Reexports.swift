import MmapStore
import SystemCalls

// The storage types a user of the instrumentation API names, under this module's name, so
// that `import PromMetrics` is the only import an instrumented program needs. (MmapStore and
// SystemCalls are internal targets; no `@_exported import`.)

/// How a gauge's values from several processes are merged: the ten modes of prometheus_client.
public typealias GaugeMode = MmapStore.GaugeMode

/// A label name and value.
public typealias Label = MmapStore.Label

/// Who this process is, for file names: its pid by default, injectable for tests.
public typealias ProcessIdentity = MmapStore.ProcessIdentity

/// A failed system call, naming the call, the file and the error.
public typealias SystemError = SystemCalls.SystemError
