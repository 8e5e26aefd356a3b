// With several merge threads, a reading thread compares the files after a kind's first file
// (its lead) with the lead's bytes as that thread read them, while the merging thread reads
// the lead itself; a writer may change the lead between the two reads. The merging thread then
// takes a file found equal to the image only for as many entries as `KeyTemplate.agreement`
// finds its own read of the lead to hold the image's keys (ReadAhead.swift). Which read comes
// first is up to the threads, so the merge tests meet a changed lead only by chance; here the
// two reads are made one after the other: an image of one version of the file, the merging
// thread's read of another.
import Foundation
import MmapStore
@testable import MultiprocessCollector
import Testing
import TestSupport

@Suite("A lead file read twice: the image counts only where both reads agree")
struct LeadAgreementTests {
    static let keys = (0..<200).map { KeyTemplateTests.key($0) }

    /// A lead image of `keys`, as a reading thread makes it: the file's bytes, and per entry the
    /// offset of its value (after the 4-byte length, the key and `8 - (L + 4) % 8` padding
    /// bytes: prometheus_client's layout).
    static func image(of keys: [String]) -> KeyTemplate {
        let file = KeyTemplateTests.file(keys) { Double($0) }
        let bytes = UnsafeMutableRawBufferPointer.allocate(byteCount: file.bytes.count, alignment: 8)
        bytes.copyBytes(from: file.bytes)
        let valueOffsets = zip(file.offsets, keys).map { offset, key in
            let length = key.utf8.count
            return UInt32(offset + 4 + length + 8 - (length + 4) % 8)
        }
        return KeyTemplate(lead: bytes, valueOffsets: valueOffsets, generation: -2)
    }

    /// The agreement of `image` with the merging thread's read of a file holding `keys`.
    static func agreement(_ image: KeyTemplate, mergingThreadReads keys: [String]) throws -> Int {
        let dir = TempDirectory("lead"); defer { dir.remove() }
        let path = dir.file("counter_7.db")
        try CollectorTests.write(KeyTemplateTests.file(keys) { Double($0) + 0.5 }.bytes, to: path)
        var engine = MergeEngine(catalog: KeyCatalog())
        engine.add(paths: [path], skipDeadOwners: false)
        #expect(engine.problems.isEmpty)
        let entries = try #require(engine.catalog.knownFiles[path]?.entries)
        #expect(entries.keys.count == keys.count)
        return image.agreement(with: entries, keys: engine.catalog.keys)
    }

    @Test func theSameKeysWithOtherValuesAgreeThroughout() throws {
        #expect(try Self.agreement(Self.image(of: Self.keys), mergingThreadReads: Self.keys) == 200)
    }

    /// Entries appended after the image was made are not in it: the image stands for its own.
    @Test func aLeadThatGrewAgreesAsFarAsTheImageGoes() throws {
        let grown = Self.keys + (200..<230).map { KeyTemplateTests.key($0) }
        #expect(try Self.agreement(Self.image(of: Self.keys), mergingThreadReads: grown) == 200)
    }

    /// The merging thread's read is shorter: files compared further than it read are read again.
    @Test func aShorterReadAgreesAsFarAsItGoes() throws {
        #expect(try Self.agreement(Self.image(of: Self.keys), mergingThreadReads: Array(Self.keys.prefix(150))) == 150)
    }

    /// A key replaced by one of the same length, two keys swapped, a key of another length (the
    /// entries after it move): no entry of the image counts.
    @Test func anotherKeyAnywhereAgreesNowhere() throws {
        var replaced = Self.keys
        replaced[120] = KeyTemplateTests.key(120, value: "12x")
        var swapped = Self.keys
        swapped.swapAt(5, 6)
        var longer = Self.keys
        longer[30] = KeyTemplateTests.key(30, value: "thirty")
        for (what, keys) in [("replaced", replaced), ("swapped", swapped), ("longer", longer)] {
            #expect(keys.count == 200 && keys != Self.keys)
            #expect(try Self.agreement(Self.image(of: Self.keys), mergingThreadReads: keys) == 0, "\(what)")
        }
    }
}
