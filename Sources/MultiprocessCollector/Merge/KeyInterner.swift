import SystemCalls

/// Interns raw key bytes: maps each distinct byte string to a dense id, without allocating per
/// lookup.
///
/// The merge sees every key once per file (1.7 million entries for 64 processes of 10,000
/// series) but only a few thousand distinct keys, so a lookup must cost a hash of the bytes,
/// one probe and one comparison, and never build an array or a string. The bytes of each
/// distinct key are copied once into an arena (blocks that are never moved, so a key's bytes
/// stay where they are while the interner lives); the table is open addressing with linear
/// probing over a power-of-two slot array, kept at most half full. Bytes that already lie
/// where they stay as long as the interner (another interner's, owned with it) are interned
/// where they are, not copied (``intern(keeping:)``).
///
/// `@unchecked Sendable`: it owns its buffers alone (keys interned with
/// ``intern(keeping:)`` aside, whose bytes belong to whoever owns it alongside) and is
/// noncopyable, so it can only move between threads, never be shared.
struct KeyInterner: ~Copyable, @unchecked Sendable {
    /// Key bytes of every interned key copied, back to back.
    /// The arena block being filled, its size and how much of it is used; and every block.
    private var arena: UnsafeMutableRawPointer
    private var arenaCapacity: Int
    private var arenaUsed = 0
    private var blocks: [UnsafeMutableRawPointer] = []
    /// Per key id: where its bytes are, length, hash.
    private var starts: UnsafeMutablePointer<UnsafeRawPointer>
    private var lengths: UnsafeMutablePointer<Int32>
    private var hashes: UnsafeMutablePointer<UInt64>
    private var idCapacity: Int
    /// Number of interned keys; ids are `0..<count`.
    private(set) var count = 0
    /// Open-addressing table of key ids (`-1` = empty).
    private var table: UnsafeMutablePointer<Int32>
    private var tableMask: Int

    init() {
        arenaCapacity = 1 << 16
        arena = .allocate(byteCount: arenaCapacity, alignment: 8)
        blocks = [arena]
        idCapacity = 1024
        starts = .allocate(capacity: idCapacity)
        lengths = .allocate(capacity: idCapacity)
        hashes = .allocate(capacity: idCapacity)
        let tableSize = 2048
        table = .allocate(capacity: tableSize)
        table.initialize(repeating: -1, count: tableSize)
        tableMask = tableSize - 1
    }

    deinit {
        for block in blocks { block.deallocate() }
        starts.deallocate()
        lengths.deallocate()
        hashes.deallocate()
        table.deallocate()
    }

    /// The bytes of key `id`; valid while the interner lives (a key interned with
    /// ``intern(keeping:)``: while the bytes' owner lives).
    func bytes(of id: Int32) -> UnsafeRawBufferPointer {
        let i = Int(id)
        return UnsafeRawBufferPointer(start: starts[i], count: Int(lengths[i]))
    }

    /// The length of key `id`'s bytes.
    func length(of id: Int32) -> Int { Int(lengths[Int(id)]) }

    /// The interned keys' bytes, for a loop that compares many entries with known keys and
    /// interns nothing meanwhile; valid until the next insertion.
    var view: View { View(starts: starts, lengths: lengths) }

    /// Read-only pointers into an interner's storage (see ``view``).
    struct View {
        /// Per key id: where its bytes are, and their length.
        let starts: UnsafeMutablePointer<UnsafeRawPointer>
        let lengths: UnsafeMutablePointer<Int32>

        /// Whether key `id` (an id of the interner, or -1, which never matches) is the
        /// `length` bytes at `key`.
        @inline(__always)
        func matches(_ id: Int32, _ key: UnsafeRawPointer, length: Int32) -> Bool {
            let i = Int(id)
            guard i >= 0, lengths[i] == length else { return false }
            // The C library's vector compare: most keys are 60 to 120 bytes.
            return Sys.bytesEqual(starts[i], key, count: Int(length))
        }
    }

    /// The id of `key`, and whether it was new.
    ///
    /// - Parameter hint: the id the caller expects (or -1). Processes create their series in
    ///   much the same order, so the key that followed the previous key in the last file
    ///   usually follows it again; checking that one first costs a comparison against bytes
    ///   the CPU is already streaming through, where the hash table costs several cache
    ///   misses per lookup (about 100 ns each time on a large directory).
    @inline(__always)
    mutating func intern(_ key: UnsafeRawBufferPointer, hint: Int32) -> (id: Int32, isNew: Bool) {
        let length = key.count
        if hint >= 0 && Int(hint) < count {
            let i = Int(hint)
            if Int(lengths[i]) == length && Self.equal(starts[i], key.baseAddress, length) { return (hint, false) }
        }
        return lookUp(key, copying: true)
    }

    /// The id of `key`, and whether it was new; a new key's bytes are not copied but kept
    /// where they are, so they must stay there, unchanged, as long as this interner lives
    /// (they are another interner's that is owned alongside this one: a key catalog's raw keys).
    mutating func intern(keeping key: UnsafeRawBufferPointer) -> (id: Int32, isNew: Bool) {
        lookUp(key, copying: false)
    }

    /// The id of `key`, or -1 when it is not interned; changes nothing, so several threads may
    /// look keys up at once while no thread interns. `hint` as for ``intern(_:hint:)``.
    @inline(__always)
    func find(_ key: UnsafeRawBufferPointer, hint: Int32) -> Int32 {
        let length = key.count
        if hint >= 0 && Int(hint) < count {
            let i = Int(hint)
            if Int(lengths[i]) == length && Self.equal(starts[i], key.baseAddress, length) { return hint }
        }
        return findInTable(key)
    }

    /// `find` without a hint, out of line as `lookUp` is.
    @inline(never)
    private func findInTable(_ key: UnsafeRawBufferPointer) -> Int32 {
        let length = key.count
        let h = Self.hash(key)
        var slot = Int(truncatingIfNeeded: h) & tableMask
        while true {
            let id = table[slot]
            if id < 0 { return -1 }
            let i = Int(id)
            if hashes[i] == h && Int(lengths[i]) == length && Self.equal(starts[i], key.baseAddress, length) { return id }
            slot = (slot &+ 1) & tableMask
        }
    }

    /// `intern` without a hint: the hash table, and insertion, of a copy of `key`'s bytes in
    /// the arena or (not `copying`) of where they are. Kept out of line so that the hint
    /// check inlines into the caller's loop.
    @inline(never)
    private mutating func lookUp(_ key: UnsafeRawBufferPointer, copying: Bool) -> (id: Int32, isNew: Bool) {
        let length = key.count
        let h = Self.hash(key)
        var slot = Int(truncatingIfNeeded: h) & tableMask
        while true {
            let id = table[slot]
            if id < 0 { break }
            let i = Int(id)
            if hashes[i] == h && Int(lengths[i]) == length && Self.equal(starts[i], key.baseAddress, length) {
                return (id, false)
            }
            slot = (slot &+ 1) & tableMask
        }
        // Insert.
        if count == idCapacity { growIDs() }
        let id = count
        if !copying, let src = key.baseAddress {
            starts[id] = src
        } else {
            if arenaUsed + length > arenaCapacity { addBlock(needed: length) }
            if length > 0, let src = key.baseAddress { (arena + arenaUsed).copyMemory(from: src, byteCount: length) }
            starts[id] = UnsafeRawPointer(arena + arenaUsed)
            arenaUsed += length
        }
        lengths[id] = Int32(truncatingIfNeeded: length)
        hashes[id] = h
        count += 1
        table[slot] = Int32(truncatingIfNeeded: id)
        if count * 2 > tableMask + 1 { rehash() }
        return (Int32(truncatingIfNeeded: id), true)
    }

    /// Makes room for `n` more keys without growing again (their bytes aside): where many new
    /// keys are coming, growing the id arrays and the table once, at the start, instead of
    /// doubling them again and again (each time in new memory, mapped a page fault at a time).
    mutating func reserve(_ n: Int) {
        let needed = count + n
        if needed > idCapacity { growIDs(to: Swift.max(needed, idCapacity * 2)) }
        var size = tableMask + 1
        while needed * 2 > size { size *= 2 }
        if size > tableMask + 1 { rehash(to: size) }
    }

    private mutating func growIDs() { growIDs(to: idCapacity * 2) }

    private mutating func growIDs(to newCapacity: Int) {
        func grown<T>(_ p: UnsafeMutablePointer<T>) -> UnsafeMutablePointer<T> {
            let q = UnsafeMutablePointer<T>.allocate(capacity: newCapacity)
            q.moveInitialize(from: p, count: count)
            p.deallocate()
            return q
        }
        starts = grown(starts)
        lengths = grown(lengths)
        hashes = grown(hashes)
        idCapacity = newCapacity
    }

    /// Starts a new arena block (twice the last one, or more when `needed` bytes need it); the
    /// full one stays where it is.
    private mutating func addBlock(needed: Int) {
        var newCapacity = arenaCapacity * 2
        while needed > newCapacity { newCapacity *= 2 }
        arena = .allocate(byteCount: newCapacity, alignment: 8)
        blocks.append(arena)
        arenaCapacity = newCapacity
        arenaUsed = 0
    }

    private mutating func rehash() { rehash(to: (tableMask + 1) * 2) }

    private mutating func rehash(to size: Int) {
        table.deallocate()
        table = .allocate(capacity: size)
        table.initialize(repeating: -1, count: size)
        tableMask = size - 1
        for id in 0..<count {
            var slot = Int(truncatingIfNeeded: hashes[id]) & tableMask
            while table[slot] >= 0 { slot = (slot &+ 1) & tableMask }
            table[slot] = Int32(truncatingIfNeeded: id)
        }
    }

    /// A fast, non-cryptographic hash of the bytes: eight bytes at a time, each word mixed in
    /// with a multiply and an xor-shift, and a final avalanche so the low bits (the table
    /// index) depend on every byte. Keys of one family share long prefixes, so every byte
    /// must count.
    @inline(__always)
    static func hash(_ key: UnsafeRawBufferPointer) -> UInt64 {
        let n = key.count
        var h: UInt64 = 0x243F_6A88_85A3_08D3 ^ UInt64(truncatingIfNeeded: n)
        guard let p = key.baseAddress else { return h }
        var i = 0
        while i + 8 <= n {
            let w = UInt64(littleEndian: p.loadUnaligned(fromByteOffset: i, as: UInt64.self))
            h = (h ^ w) &* 0x9E37_79B9_7F4A_7C15
            h ^= h >> 32
            i += 8
        }
        if i < n {
            var w: UInt64 = 0
            if n >= 8 {
                // The last eight bytes, some of them hashed already: one load instead of a
                // loop over the few left.
                w = UInt64(littleEndian: p.loadUnaligned(fromByteOffset: n - 8, as: UInt64.self))
            } else {
                var shift: UInt64 = 0
                while i < n {
                    w |= UInt64(p.load(fromByteOffset: i, as: UInt8.self)) << shift
                    shift += 8
                    i += 1
                }
            }
            h = (h ^ w) &* 0x9E37_79B9_7F4A_7C15
            h ^= h >> 32
        }
        h ^= h >> 29
        h = h &* 0xBF58_476D_1CE4_E5B9
        h ^= h >> 32
        return h
    }

    /// Byte equality: the C library's `memcmp` (``Sys/bytesEqual(_:_:count:)``), the one
    /// byte compare of the merge.
    @inline(__always)
    static func equal(_ a: UnsafeRawPointer, _ b: UnsafeRawPointer?, _ n: Int) -> Bool {
        guard let b else { return n == 0 }
        return Sys.bytesEqual(a, b, count: n)
    }
}
