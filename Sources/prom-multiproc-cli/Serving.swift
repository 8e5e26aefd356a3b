import Foundation
import MmapStore
import MultiprocessCollector

/// Adds the commands that need the collector and the HTTP server.
func registerServingCommands(into commands: inout [String: Command]) {}
