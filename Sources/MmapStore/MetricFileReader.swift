import SystemCalls
/// One entry of a metric file as read from disk.
package struct RawEntry {
    /// The key's bytes, valid only during the callback.
    package var key: UnsafeRawBufferPointer
    /// The stored value.
    package var value: Double
    /// The stored timestamp (0 when never set).
    package var timestamp: Double
    /// The entry's offset in the file.
    package var offset: Int
}

/// One entry with its key decoded.
package struct DecodedEntry: Hashable, Sendable {
    /// The decoded key.
    package var key: SeriesKey
    /// The stored value.
    package var value: Double
    /// The stored timestamp (0 when never set).
    package var timestamp: Double
    /// The entry's offset in the file.
    package var offset: Int
}

/// Reads metric files defensively: every length and offset is bounds-checked, files are read
/// with `pread` rather than mapped (a file truncated under a mapping would raise SIGBUS),
/// symbolic links are not followed, and every problem is a ``MetricFileError``.
///
/// ```swift
/// var reader = MetricFileReader()
/// let contents = try reader.load(path: "/run/metrics/counter_123.db")
/// try contents.forEachEntry { entry in print(entry.value) }
/// ```
package struct MetricFileReader: ~Copyable {
    private var buffer: UnsafeMutableRawBufferPointer

    /// Creates a reader with a reusable buffer.
    package init() {
        buffer = .allocate(byteCount: 1 << 16, alignment: 16)
    }

    deinit { buffer.deallocate() }

    /// Reads the used part of a file into the reader's buffer and checks its header.
    ///
    /// The result borrows the reader's buffer: it is valid until the next `load`.
    /// - Parameter path: the file's path.
    /// - Returns: the file's bytes in use, with its writer.
    /// - Throws: ``MetricFileError`` naming the file and the problem.
    package mutating func load(path: String) throws(MetricFileError) -> LoadedMetricFile {
        let fd = try open(path)
        defer { Sys.close(fd) }
        let header = try readHeader(fd, path: path)
        var got = header.got
        let used = header.used
        if used == 0 {
            // An all-zero header: a file that holds nothing yet (Python reads it as empty too).
            return LoadedMetricFile(path: path, bytes: UnsafeRawBufferPointer(rebasing: buffer[0..<0]), writer: header.writer, fileSize: header.fileSize)
        }
        if used > buffer.count {
            var newCount = buffer.count
            while newCount < used { newCount *= 2 }
            let bigger = UnsafeMutableRawBufferPointer.allocate(byteCount: newCount, alignment: 16)
            bigger.copyMemory(from: UnsafeRawBufferPointer(rebasing: buffer[0..<got]))
            buffer.deallocate()
            buffer = bigger
        }
        if got < used {
            got += try read(fd, path: path, offset: got, count: used - got)
            if got < used { throw MetricFileError(path: path, kind: .truncated(size: got, needed: used)) }
        }
        return LoadedMetricFile(path: path, bytes: UnsafeRawBufferPointer(rebasing: buffer[0..<used]), writer: header.writer, fileSize: header.fileSize)
    }

    /// Reads a file as ``load(path:)`` does, with the same checks and errors in the same order,
    /// but through the reader's buffer piece by piece, handing the bytes to `body` while they
    /// are still in the CPU's cache: reading a large file whole copies it through main memory
    /// first, which costs more than everything done with its entries.
    ///
    /// `body` receives the file's bytes from the next entry on, as far as they have been read
    /// (never past `used`), with their file offset and `used`. It walks the entries in them,
    /// bounds-checking each as ``LoadedMetricFile/forEachEntry(in:path:_:)`` does (against
    /// `used`, throwing `entryOutOfBounds`), stops at the first entry that does not end inside
    /// the bytes given, and returns how many bytes of whole entries it consumed; it is called
    /// again with the rest once more is read. When `body` throws, the rest of the file is read
    /// first, so that a file that turns out shorter than its header says is reported as
    /// truncated, as ``load(path:)`` reports it.
    ///
    /// The bytes are the reader's own copy: `body` may write over those it consumes (a
    /// comparison that blanks the values first), but must leave the rest as it was given them,
    /// for they are given again with the next read.
    /// - Parameters:
    ///   - path: the file's path.
    ///   - opened: called once the header is checked, before `body`, with the identity of the
    ///     file opened (nil where its birth time is unknown) and `used`.
    ///   - body: called with `(bytes, offset of bytes[0] in the file, used)`; returns the bytes
    ///     consumed.
    /// - Returns: who wrote the file.
    /// - Throws: ``MetricFileError`` naming the file and the problem, or what `body` throws.
    package mutating func streamEntries(
        path: String, opened: ((_ identity: FileIdentity?, _ used: Int) -> Void)? = nil,
        _ body: (_ bytes: UnsafeMutableRawBufferPointer, _ offset: Int, _ used: Int) throws(MetricFileError) -> Int
    ) throws(MetricFileError) -> FileFormat.Writer {
        let fd = try open(path)
        defer { Sys.close(fd) }
        let header = try readHeader(fd, path: path)
        let used = header.used
        if let opened { opened(FileIdentity(fd, header.status), used) }
        if used == 0 { return header.writer }
        // buffer[0..<filled] holds the file's bytes from offset `base`.
        var base = 0
        var filled = Swift.min(header.got, used)
        var pos = FileFormat.headerSize
        while true {
            let available = base + filled
            do throws(MetricFileError) {
                let consumed = try body(UnsafeMutableRawBufferPointer(rebasing: buffer[(pos - base)..<filled]), pos, used)
                precondition(consumed >= 0 && pos + consumed <= available, "streamEntries: body consumed bytes it was not given")
                pos += consumed
            } catch {
                try drain(fd, path: path, from: available, used: used)
                throw error
            }
            if pos >= used { return header.writer }
            // Keep the incomplete entry, make room for it whole (body checked its length),
            // and read on.
            let kept = available - pos
            var needed = 4
            if kept >= 4 {
                let length = Int(Int32(littleEndian: buffer.loadUnaligned(fromByteOffset: pos - base, as: Int32.self)))
                needed = 4 + length + FileFormat.padding(keyLength: length) + 16
            }
            if needed > buffer.count {
                var newCount = buffer.count
                while newCount < needed { newCount *= 2 }
                let bigger = UnsafeMutableRawBufferPointer.allocate(byteCount: newCount, alignment: 16)
                bigger.copyMemory(from: UnsafeRawBufferPointer(rebasing: buffer[(pos - base)..<(pos - base + kept)]))
                buffer.deallocate()
                buffer = bigger
            } else if kept > 0 {
                buffer.baseAddress!.copyMemory(from: buffer.baseAddress! + (pos - base), byteCount: kept)
            }
            base = pos
            let count = Swift.min(buffer.count - kept, used - (base + kept))
            precondition(count > 0, "streamEntries: body stopped before an entry it was given whole")
            let n = try read(fd, path: path, offset: base + kept, count: count, at: kept)
            filled = kept + n
            if n < count { throw MetricFileError(path: path, kind: .truncated(size: base + filled, needed: used)) }
        }
    }

    /// Opens the file at `path` and checks only its header (exactly as ``streamEntries(path:opened:_:)``
    /// does before it reads on): which file it is (nil where its birth time is unknown) and
    /// how far it is used.
    /// - Throws: ``MetricFileError`` for a file that cannot be opened or whose header is bad.
    package mutating func peek(path: String) throws(MetricFileError) -> (identity: FileIdentity?, used: Int) {
        let fd = try open(path)
        defer { Sys.close(fd) }
        let header = try readHeader(fd, path: path, firstRead: FileFormat.headerSize)
        return (FileIdentity(fd, header.status), header.used)
    }

    /// Reads the file on from `offset` up to `used` without looking at it: a file shorter
    /// than its header says is truncated, which `load` reports before anything else.
    private func drain(_ fd: Int32, path: String, from offset: Int, used: Int) throws(MetricFileError) {
        var got = offset
        while got < used {
            let count = Swift.min(buffer.count, used - got)
            let n = try read(fd, path: path, offset: got, count: count, at: 0)
            got += n
            if n < count { throw MetricFileError(path: path, kind: .truncated(size: got, needed: used)) }
        }
    }

    private func open(_ path: String) throws(MetricFileError) -> Int32 {
        do {
            return try Sys.open(path, [.readOnly, .noFollow, .nonBlocking])
        } catch {
            if error.errno == .symlinkLoop { throw MetricFileError(path: path, kind: .symlink) }
            if error.errno == .noEntry { throw MetricFileError(path: path, kind: .vanished) }
            throw MetricFileError(path: path, kind: .system(error))
        }
    }

    /// Checks the file's type and size, reads its first bytes into the buffer and checks the
    /// header. `used` is 0 for an all-zero header; otherwise at least the header's size and
    /// at most `fileSize`.
    private func readHeader(_ fd: Int32, path: String, firstRead: Int = 1 << 16) throws(MetricFileError)
        -> (got: Int, used: Int, writer: FileFormat.Writer, fileSize: Int, status: Sys.FileStatus) {
        let status: Sys.FileStatus
        do { status = try Sys.fstat(fd, path: path) } catch { throw MetricFileError(path: path, kind: .system(error)) }
        guard status.isRegular else { throw MetricFileError(path: path, kind: .notRegularFile) }
        // A second name may be outside the directory (a hostile writer's link to another of
        // the user's files): such a file is reported, as a symbolic link is, and never read.
        guard status.links <= 1 else { throw MetricFileError(path: path, kind: .hardLink(links: status.links)) }
        if status.size == 0 { throw MetricFileError(path: path, kind: .empty) }
        if status.size < FileFormat.headerSize {
            throw MetricFileError(path: path, kind: .truncated(size: status.size, needed: FileFormat.headerSize))
        }
        // First read: up to 64 KiB covers most files in one call.
        let got = try read(fd, path: path, offset: 0, count: Swift.min(status.size, buffer.count, firstRead))
        guard got >= FileFormat.headerSize else {
            throw MetricFileError(path: path, kind: .truncated(size: got, needed: FileFormat.headerSize))
        }
        let used = Int(Int32(littleEndian: buffer.loadUnaligned(fromByteOffset: 0, as: Int32.self)))
        let marker = (buffer[4], buffer[5], buffer[6], buffer[7])
        guard let writer = FileFormat.writer(marker: marker) else {
            throw MetricFileError(path: path, kind: .unknownMarker)
        }
        if case .swift(let v) = writer, v != FileFormat.version {
            throw MetricFileError(path: path, kind: .unknownVersion(v))
        }
        if used == 0 { return (got, 0, writer, status.size, status) }
        guard used >= FileFormat.headerSize else { throw MetricFileError(path: path, kind: .invalidUsed(used)) }
        var fileSize = status.size
        if used > fileSize {
            // A live writer may have grown the file and published the new `used` between our
            // fstat and our read of the header: look at the size again before calling the
            // file truncated (files only grow while their writer lives).
            do { fileSize = try Sys.fstat(fd, path: path).size } catch { throw MetricFileError(path: path, kind: .system(error)) }
            if used > fileSize { throw MetricFileError(path: path, kind: .truncated(size: fileSize, needed: used)) }
        }
        return (got, used, writer, fileSize, status)
    }

    /// Reads `count` bytes of the file from `offset` into the buffer at `at` (default: `offset`).
    private func read(_ fd: Int32, path: String, offset: Int, count: Int, at: Int? = nil) throws(MetricFileError) -> Int {
        let start = at ?? offset
        do {
            return try Sys.pread(fd, into: UnsafeMutableRawBufferPointer(rebasing: buffer[start..<(start + count)]), offset: offset, path: path)
        } catch {
            throw MetricFileError(path: path, kind: .system(error))
        }
    }

    /// Reads a file and decodes every entry; convenient for tools and tests.
    /// - Throws: ``MetricFileError`` for the first problem found.
    package static func decodeAll(path: String) throws(MetricFileError) -> (writer: FileFormat.Writer, entries: [DecodedEntry]) {
        var reader = MetricFileReader()
        let file = try reader.load(path: path)
        var entries: [DecodedEntry] = []
        var failure: MetricFileError?
        try file.forEachEntry { e in
            guard failure == nil else { return }
            do throws(KeyDecodingError) {
                entries.append(DecodedEntry(key: try SeriesKey(decoding: e.key), value: e.value, timestamp: e.timestamp, offset: e.offset))
            } catch {
                failure = MetricFileError(path: path, kind: .invalidKey(offset: e.offset, error))
            }
        }
        if let failure { throw failure }
        return (file.writer, entries)
    }
}

/// One file for good, not just the name or inode it has now: device, inode and birth time.
///
/// A merge that remembers what a file held (``MetricFileReader/streamEntries(path:opened:_:)``)
/// needs to know the file it reads is the one it read before. Names are reused (a worker
/// restarting under the same pid), and so are inode numbers (ext4 gives a deleted file's to
/// the next one created), but a birth time is not: two files with all three equal are one.
package struct FileIdentity: Hashable, Sendable {
    let device: UInt64
    let inode: UInt64
    let birthSeconds: Int64
    let birthNanoseconds: UInt32

    /// The identity of the open file `fd`, or nil where the file system records no birth time.
    init?(_ fd: Int32, _ status: Sys.FileStatus) {
        guard let birth = Sys.birthTime(fd) else { return nil }
        device = status.device
        inode = status.inode
        birthSeconds = birth.seconds
        birthNanoseconds = birth.nanoseconds
    }
}

/// A good metric file kept mapped read-only between scrapes, so that a scrape of the file
/// unchanged reads only its value slots (``gather(offsets:values:stamps:)``) instead of
/// copying all of it. Unmapped when released.
///
/// A mapped page past the end of its file raises SIGBUS when touched, so a file truncated by
/// another process under the mapping would end the reader: reads go through
/// `Sys.guardedGather`, which catches that signal and reports the read as failed.
package final class ReadMapping: @unchecked Sendable {
    // Immutable after `init`: shared freely between threads.
    private let base: UnsafeMutableRawPointer
    /// How many bytes from the file's start are mapped.
    package let length: Int

    /// Maps the first `length` bytes of the file at `path`, if it is still the file
    /// `identity`, a regular file at least that long; nil otherwise.
    package init?(path: String, identity: FileIdentity, length: Int) {
        guard length > 0, let fd = try? Sys.open(path, [.readOnly, .noFollow, .nonBlocking]) else { return nil }
        defer { Sys.close(fd) }
        guard let status = try? Sys.fstat(fd, path: path), status.isRegular, status.size >= length,
              FileIdentity(fd, status) == identity,
              let base = try? Sys.mapShared(fd, length: length, writable: false, path: path) else { return nil }
        self.base = base
        self.length = length
    }

    deinit { Sys.unmap(base, length: length) }

    /// Copies the value at each of `offsets` (every one at most `length - 16`) to `values`,
    /// and the timestamp after it to `stamps`.
    /// - Returns: whether every value was read; not when the file no longer reaches one of
    ///   them (truncated since it was mapped) or the guard is not in place.
    package func gather(offsets: UnsafeBufferPointer<UInt32>, values: UnsafeMutablePointer<Double>,
                        stamps: UnsafeMutablePointer<Double>) -> Bool {
        Sys.guardedGather(base, offsets: offsets, values: values, stamps: stamps)
    }
}

/// The used bytes of a file, borrowed from a ``MetricFileReader``'s buffer.
package struct LoadedMetricFile {
    /// The file's path.
    package let path: String
    /// The bytes in use, header included (empty for an all-zero file).
    package let bytes: UnsafeRawBufferPointer
    /// Who wrote the file.
    package let writer: FileFormat.Writer
    /// The file's size on disk (its capacity).
    package let fileSize: Int

    /// Calls `body` for each entry, in file order.
    /// - Throws: ``MetricFileError`` when an entry runs past the bytes in use; entries before
    ///   it have already been passed to `body`.
    package func forEachEntry(_ body: (RawEntry) -> Void) throws(MetricFileError) {
        try Self.forEachEntry(in: bytes, path: path, body)
    }

    /// Walks the entries of a file's used bytes (header included), bounds-checking each one.
    package static func forEachEntry(in bytes: UnsafeRawBufferPointer, path: String, _ body: (RawEntry) -> Void) throws(MetricFileError) {
        let used = bytes.count
        var pos = FileFormat.headerSize
        while pos < used {
            guard pos + 4 <= used else { throw MetricFileError(path: path, kind: .entryOutOfBounds(offset: pos, keyLength: -1)) }
            let length = Int(Int32(littleEndian: bytes.loadUnaligned(fromByteOffset: pos, as: Int32.self)))
            guard length >= 0, length <= used else {
                throw MetricFileError(path: path, kind: .entryOutOfBounds(offset: pos, keyLength: length))
            }
            let keyStart = pos + 4
            let valueOffset = keyStart + length + FileFormat.padding(keyLength: length)
            let end = valueOffset + 16
            guard end <= used else { throw MetricFileError(path: path, kind: .entryOutOfBounds(offset: pos, keyLength: length)) }
            let value = Double(bitPattern: UInt64(littleEndian: bytes.loadUnaligned(fromByteOffset: valueOffset, as: UInt64.self)))
            let ts = Double(bitPattern: UInt64(littleEndian: bytes.loadUnaligned(fromByteOffset: valueOffset + 8, as: UInt64.self)))
            body(RawEntry(key: UnsafeRawBufferPointer(rebasing: bytes[keyStart..<(keyStart + length)]), value: value, timestamp: ts, offset: pos))
            pos = end
        }
    }
}
