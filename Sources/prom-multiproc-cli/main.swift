// prom-multiproc-cli: the supervisor's and operator's tool. It parses arguments and prints;
// everything worth testing lives in the libraries.
import SystemCalls
import Foundation

let usage = """
usage: prom-multiproc-cli <command> [options]

commands:
  serve      serve the merged metrics of a directory over HTTP
  collect    print (or write atomically) the merged exposition
  push       push the merged metrics to a Prometheus Pushgateway (batch jobs)
  mark-dead  remove a dead process's live-mode gauge files (child-exit hook)
  compact    fold dead processes' files into archives
  wipe       remove every metric file (start-up clean)
  inspect    show and validate metric files
  demo       run workers and serve their merged metrics (the README's main job)

Every command takes --help. The directory defaults to $PROMETHEUS_MULTIPROC_DIR.

"""

struct Command {
    var spec: OptionSpec
    var help: String
    var run: (Arguments) throws -> ExitCode
}

func allCommands() -> [String: Command] {
    var commands: [String: Command] = [
        "mark-dead": Command(spec: MarkDeadCommand.spec, help: MarkDeadCommand.help, run: MarkDeadCommand.run),
        "compact": Command(spec: CompactCommand.spec, help: CompactCommand.help, run: CompactCommand.run),
        "wipe": Command(spec: WipeCommand.spec, help: WipeCommand.help, run: WipeCommand.run),
        "inspect": Command(spec: InspectCommand.spec, help: InspectCommand.help, run: InspectCommand.run),
        "push": Command(spec: PushCommand.spec, help: PushCommand.help, run: PushCommand.run),
    ]
    registerServingCommands(into: &commands)
    return commands
}

func main() -> Int32 {
    Sys.unblockAllSignals()
    let commands = allCommands()
    let argv = CommandLine.arguments
    guard argv.count >= 2 else { printError(usage); return ExitCode.usage.rawValue }
    let name = argv[1]
    if name == "--help" || name == "-h" || name == "help" { printOut(usage); return ExitCode.ok.rawValue }
    guard let command = commands[name] else {
        printError("prom-multiproc-cli: unknown command '\(name)'\n\n" + usage)
        return ExitCode.usage.rawValue
    }
    let rest = Array(argv.dropFirst(2))
    if rest.contains("--help") || rest.contains("-h") { printOut(command.help); return ExitCode.ok.rawValue }
    do {
        let args = try Arguments(rest, spec: command.spec)
        return try command.run(args).rawValue
    } catch let e as UsageError {
        printError("prom-multiproc-cli \(name): \(e.message)")
        return ExitCode.usage.rawValue
    } catch {
        printError("prom-multiproc-cli \(name): \(error)")
        return ExitCode.failure.rawValue
    }
}

exit(main())
