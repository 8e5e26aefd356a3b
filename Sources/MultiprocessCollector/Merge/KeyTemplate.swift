import MmapStore
import SystemCalls

/// The bytes a file of one kind has when it holds exactly the keys of the last good file of
/// that kind, in the same order: each entry's length, key and padding where that file had
/// them, its value and timestamp zero.
///
/// Workers of one application create their series in the same order, so most files of a
/// directory are their kind's last file again with other values. The merge checks such a file
/// block by block against this image (``run(from:at:in:base:used:into:ids:stamps:)``): it takes
/// each entry's value and timestamp out of the bytes read and zeroes them there, and then one
/// `memcmp` of the block against the image compares every length, key and padding byte at
/// once. A block that differs anywhere gets its values back and is left to the
/// entry-by-entry check, which finds the same keys or reports the same problem.
///
/// The image is never written once made, so every thread compares files with the same one.
///
/// Every key of the image passed the checks of a file of its kind (the file was good), so an
/// entry equal to the image's needs no other check; its key id is the image's.
///
/// A *lead* image (``init(lead:valueOffsets:generation:)``) is a file's bytes as read, made
/// before the merging thread decodes that file: its keys have no ids yet (``sequence`` is
/// nil), and files found equal to it are only handed over once the merging thread has read
/// the same keys from that file (see ReadAhead.swift).
final class KeyTemplate {
    /// The keys of the file the image was made from (nil for a lead image).
    let sequence: KeySequence?
    /// Per entry: the file offset of its value.
    let valueOffsets: [UInt32]
    /// The file's bytes from offset 0 up to the end of its last entry (the header is never
    /// compared, and the values and timestamps are zero).
    private let image: UnsafeRawBufferPointer
    /// Which of the kind's key sequences it was made from (see `MergeEngine.remember`).
    let generation: Int
    /// Entries compared with one `memcmp`.
    static let block = 64

    /// The image of `sequence`, whose keys are interned in `keys`.
    init(sequence: KeySequence, keys: borrowing KeyInterner, generation: Int) {
        self.sequence = sequence
        valueOffsets = sequence.valueOffsets
        self.generation = generation
        let end = (sequence.valueOffsets.last.map { Int($0) } ?? FileFormat.headerSize - 16) + 16
        let image = UnsafeMutableRawBufferPointer.allocate(byteCount: end, alignment: 8)
        image.initializeMemory(as: UInt8.self, repeating: 0x20)
        var pos = FileFormat.headerSize
        for (i, id) in sequence.keys.enumerated() {
            let key = keys.bytes(of: id)
            image.storeBytes(of: Int32(truncatingIfNeeded: key.count).littleEndian, toByteOffset: pos, as: Int32.self)
            if let source = key.baseAddress, let target = image.baseAddress {
                (target + pos + 4).copyMemory(from: source, byteCount: key.count)
            }
            pos = Int(sequence.valueOffsets[i]) + 16
        }
        Self.zeroValues(of: image, at: sequence.valueOffsets)
        self.image = UnsafeRawBufferPointer(image)
    }

    /// The lead image of a file whose first bytes, up to the end of its entry number
    /// `valueOffsets.count - 1`, are those of `lead` (read as ``MetricFileReader`` reads a
    /// file, its header checked and each entry's bounds as ``EntryBounds/entry(at:in:base:used:path:)``
    /// checks them); `valueOffsets` are its entries' value offsets. The template owns `lead`,
    /// zeroes its values and timestamps, and deallocates it.
    init(lead: UnsafeMutableRawBufferPointer, valueOffsets: [UInt32], generation: Int) {
        sequence = nil
        self.valueOffsets = valueOffsets
        self.generation = generation
        Self.zeroValues(of: lead, at: valueOffsets)
        image = UnsafeRawBufferPointer(lead)
    }

    deinit { image.deallocate() }

    /// Zeroes the value and timestamp at each of `offsets` in `image` (each inside it).
    private static func zeroValues(of image: UnsafeMutableRawBufferPointer, at offsets: [UInt32]) {
        for offset in offsets {
            image.storeBytes(of: 0, toByteOffset: Int(offset), as: UInt64.self)
            image.storeBytes(of: 0, toByteOffset: Int(offset) + 8, as: UInt64.self)
        }
    }

    var count: Int { valueOffsets.count }

    /// The file offset of entry `i` (`i < count`).
    func start(of i: Int) -> Int { i == 0 ? FileFormat.headerSize : Int(valueOffsets[i - 1]) + 16 }

    /// How many of the first entries of this lead image hold the keys of `sequence` (interned
    /// in `keys`): as many as the shorter of the two has when every one of those has the
    /// same length, key and value offset, else 0.
    func agreement(with sequence: KeySequence, keys: borrowing KeyInterner) -> Int {
        let m = Swift.min(count, sequence.keys.count)
        guard let room = image.baseAddress, valueOffsets[..<m].elementsEqual(sequence.valueOffsets[..<m]) else { return 0 }
        for i in 0..<m {
            let at = start(of: i)
            let key = keys.bytes(of: sequence.keys[i])
            guard Int32(littleEndian: image.loadUnaligned(fromByteOffset: at, as: Int32.self)) == Int32(truncatingIfNeeded: key.count) else { return 0 }
            if let bytes = key.baseAddress, !Sys.bytesEqual(room + at + 4, bytes, count: key.count) { return 0 }
        }
        return m
    }

    /// Resolves entries from `first` on, the first at file offset `pos`, while each equals the
    /// image's: a block at a time (``run(from:at:in:base:used:into:ids:stamps:)``), else one entry at a
    /// time, for the entries before a block that differs or does not lie whole in `bytes`
    /// (an entry equals the image's when its length, key and padding bytes do). Their values
    /// go to `scratch` at their index, and their timestamps too where `stamps` says so; not
    /// their key ids (a reading thread's hand-over takes them from the template's sequence,
    /// and a lead image has none). Those resolved a block at a time have their values and
    /// timestamps zeroed in `bytes`.
    /// - Returns: the entries resolved up to (not including) `next`, the offset of `next`,
    ///   and whether `next` is another entry than the image's (or lies past `used`, or
    ///   follows the image's last entry) rather than not lying whole inside `bytes` yet.
    func match(from first: Int, at pos: Int, in bytes: UnsafeMutableRawBufferPointer, base: Int, used: Int,
               into scratch: borrowing EntryScratch, stamps writeStamps: Bool) -> (next: Int, pos: Int, differs: Bool) {
        guard let start = bytes.baseAddress, let room = image.baseAddress else { return (first, pos, false) }
        let values = scratch.values, stamps = scratch.stamps
        return valueOffsets.withUnsafeBufferPointer { valueOffsets in
            var i = first, at = pos
            // After a block that is not whole here or differs, its entries one by one.
            var blockAt = i
            while at < used {
                guard i < count else { return (i, at, true) }
                if i >= blockAt {
                    let (next, end) = run(from: i, at: at, in: bytes, base: base, used: used, into: scratch, ids: false,
                                          stamps: writeStamps)
                    if next > i {
                        i = next
                        at = end
                        continue
                    }
                    blockAt = i &+ Self.block
                }
                // Bounds checked as the merge checks them; out of bounds: not the image's.
                let entry: (key: UnsafeRawBufferPointer, valueAt: Int, end: Int)?
                do {
                    entry = try EntryBounds.entry(at: at, in: UnsafeRawBufferPointer(bytes), base: base, used: used, path: "")
                } catch {
                    return (i, at, true)
                }
                guard let (_, valueAt, end) = entry else { return (i, at, false) }
                // Its value where the image has it, and its length, key and padding the image's.
                guard base &+ valueAt == Int(valueOffsets[i]),
                      Sys.bytesEqual(start + (at &- base), room + at, count: base &+ valueAt &- at) else { return (i, at, true) }
                values[i] = Double(bitPattern: UInt64(littleEndian: start.loadUnaligned(fromByteOffset: valueAt, as: UInt64.self)))
                if writeStamps {
                    let stamp = start.loadUnaligned(fromByteOffset: valueAt &+ 8, as: UInt64.self)
                    stamps[i] = Double(bitPattern: UInt64(littleEndian: stamp))
                }
                i &+= 1
                at = end
            }
            return (i, at, false)
        }
    }

    /// Resolves entries from `first` on, the first at file offset `pos` (where the image has
    /// its entry `first`), one block of entries at a time, while a whole block lies inside
    /// `bytes` and `used` and equals the image but for values and timestamps; their values
    /// go to `scratch` at their index, and their timestamps and key ids too where `stamps`
    /// and `ids` say so (no ids from a lead image, which has none). The values and timestamps
    /// of the blocks resolved are zeroed in `bytes`; the rest of `bytes` is left as it was.
    ///
    /// A block is taken where the image has it: its values and timestamps are read, and
    /// zeroed, at the image's value offsets, then one `memcmp` compares it with the image.
    /// Equal, every byte but those is the image's, lengths included, so the block's entries
    /// lie exactly where the image's do and hold their keys; no entry's length is read on
    /// the way (each would wait for the one before it).
    /// - Returns: the entries resolved up to (not including) `next`, and the offset of
    ///   `next`; `next == first` when the first block differs or does not fit.
    func run(from first: Int, at pos: Int, in bytes: UnsafeMutableRawBufferPointer, base: Int, used: Int,
             into scratch: borrowing EntryScratch, ids: Bool, stamps writeStamps: Bool) -> (next: Int, pos: Int) {
        guard let start = bytes.baseAddress, let room = image.baseAddress, first < count, pos == self.start(of: first),
              pos >= base else { return (first, pos) }
        // Offsets below `used` (an Int32) plus one entry: they cannot overflow an Int.
        let limit = Swift.min(used, base &+ bytes.count, image.count)
        let values = scratch.values, stamps = scratch.stamps
        return valueOffsets.withUnsafeBufferPointer { valueOffsets in
            let offsets = valueOffsets.baseAddress.unsafelyUnwrapped
            // A block's values and timestamps as read, to put back where it is not the image's.
            return withUnsafeTemporaryAllocation(of: UInt64.self, capacity: 2 &* Self.block) { saved in
                let saved = saved.baseAddress.unsafelyUnwrapped
                var i = first, pos = pos
                while i &+ Self.block <= count {
                    // The block's end where the image has it; past what was read: not whole here.
                    let end = Int(offsets[i &+ Self.block &- 1]) &+ 16
                    guard end <= limit else { return (i, pos) }
                    for k in 0..<Self.block {
                        let valueAt = Int(offsets[i &+ k]) &- base
                        let value = start.loadUnaligned(fromByteOffset: valueAt, as: UInt64.self)
                        let stamp = start.loadUnaligned(fromByteOffset: valueAt &+ 8, as: UInt64.self)
                        saved[2 &* k] = value
                        saved[2 &* k &+ 1] = stamp
                        start.storeBytes(of: 0, toByteOffset: valueAt, as: UInt64.self)
                        start.storeBytes(of: 0, toByteOffset: valueAt &+ 8, as: UInt64.self)
                        values[i &+ k] = Double(bitPattern: UInt64(littleEndian: value))
                        if writeStamps { stamps[i &+ k] = Double(bitPattern: UInt64(littleEndian: stamp)) }
                    }
                    guard Sys.bytesEqual(start + (pos &- base), room + pos, count: end &- pos) else {
                        // The block's values and timestamps back where they were.
                        for k in 0..<Self.block {
                            let valueAt = Int(offsets[i &+ k]) &- base
                            start.storeBytes(of: saved[2 &* k], toByteOffset: valueAt, as: UInt64.self)
                            start.storeBytes(of: saved[2 &* k &+ 1], toByteOffset: valueAt &+ 8, as: UInt64.self)
                        }
                        return (i, pos)
                    }
                    if ids {
                        sequence?.keys.withUnsafeBufferPointer { keys in
                            if let keys = keys.baseAddress { (scratch.keys + i).update(from: keys + i, count: Self.block) }
                        }
                    }
                    i &+= Self.block
                    pos = end
                }
                return (i, pos)
            }
        }
    }
}
