import SystemCalls
/// Checks of a multiprocess directory's ownership and permissions.
///
/// Whoever can write to the directory can forge every exported value, plant files under the
/// names writers and the compactor use, and remove files. The directory must therefore be
/// writable only by the deployment's user. These checks say when it is not; the collector and
/// the command-line tool print the warnings, they do not refuse to run.
package enum DirectorySafety {
    /// Human-readable warnings about `path`, empty when the directory looks safe.
    ///
    /// Warns when the directory
    /// - cannot be inspected or is not a directory;
    /// - is world-writable without the sticky bit (any local user may then rename or delete
    ///   every file in it, including those of other users);
    /// - is writable by its group or by others at all (they may plant or forge metric files);
    /// - is not owned by the current (effective) user.
    ///
    /// The path is followed if it is a symbolic link: the checks concern the directory the
    /// files end up in.
    /// - Parameter path: the multiprocess directory.
    /// - Returns: one sentence per problem, naming the directory.
    package static func directoryWarnings(_ path: String) -> [String] {
        let status: Sys.FileStatus
        do { status = try Sys.stat(path) } catch {
            return ["\(path): cannot be inspected: \(error.errno.message)"]
        }
        guard status.isDirectory else { return ["\(path): is not a directory"] }
        var warnings: [String] = []
        let mode = status.permissions
        let octal = "0" + String(mode & 0o7777, radix: 8)
        let worldWritable = mode & 0o002 != 0
        let groupWritable = mode & 0o020 != 0
        let sticky = mode & 0o1000 != 0
        if worldWritable && !sticky {
            warnings.append("\(path): is world-writable without the sticky bit (mode \(octal)): any local user can replace or delete the metric files")
        }
        if worldWritable || groupWritable {
            let who = worldWritable ? (groupWritable ? "its group and all other users" : "all other users") : "its group"
            warnings.append("\(path): is writable by \(who) (mode \(octal)): they can plant files or forge metric values; make it writable only by the deployment's user")
        }
        let me = Sys.geteuid()
        if status.uid != me {
            warnings.append("\(path): is owned by uid \(status.uid), not by the current user (uid \(me))")
        }
        return warnings
    }
}
