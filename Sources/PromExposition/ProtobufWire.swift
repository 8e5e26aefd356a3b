// Protocol Buffers fields on the byte writer: a tag (field number and wire type) before each
// value, varints, ZigZag for signed fields, little-endian doubles, length-prefixed strings and
// embedded messages. The message layouts are in ProtobufExposition's documentation.

extension ByteWriter {
    @inline(__always)
    mutating func writeTag(_ field: UInt64, _ wireType: ProtobufExposition.WireType) {
        writeVarint(field << 3 | wireType.rawValue)
    }

    @inline(__always)
    mutating func writeDoubleField(_ field: UInt64, _ value: Double) {
        writeTag(field, .fixed64)
        writeFixed64(value)
    }

    @inline(__always)
    mutating func writeUInt64Field(_ field: UInt64, _ value: UInt64) {
        writeTag(field, .varint)
        writeVarint(value)
    }

    /// A `sint32` or `sint64` field: ZigZag-encoded, so small negative numbers stay short
    /// (the two encodings agree for every value a `sint32` holds).
    @inline(__always)
    mutating func writeSignedField(_ field: UInt64, _ value: Int64) {
        writeTag(field, .varint)
        writeVarint(UInt64(bitPattern: (value << 1) ^ (value >> 63)))
    }

    @inline(__always)
    mutating func writeStringField(_ field: UInt64, _ text: String) {
        writeTag(field, .lengthDelimited)
        text.withUTF8Bytes { bytes in
            writeVarint(UInt64(bytes.count))
            write(bytes)
        }
    }

    /// Starts an embedded message (or any length-delimited payload) in `field`; end it with
    /// ``endLengthPrefixed(_:)``.
    @inline(__always)
    mutating func beginMessageField(_ field: UInt64) -> Int {
        writeTag(field, .lengthDelimited)
        return beginLengthPrefixed()
    }

    /// A `google.protobuf.Timestamp` for a Unix time in seconds (such as a `_created`
    /// sample's value); nothing when it is not finite or out of range.
    mutating func writeTimestampField(_ field: UInt64, seconds value: Double) {
        guard value.isFinite, abs(value) < 9.2e18 else { return }
        var seconds = value.rounded(.down)
        var nanos = ((value - seconds) * 1e9).rounded()
        if nanos >= 1e9 {
            seconds += 1
            nanos = 0
        }
        let message = beginMessageField(field)
        if seconds != 0 {
            writeTag(ProtobufExposition.Field.timestampSeconds, .varint)
            writeVarint(UInt64(bitPattern: Int64(seconds)))
        }
        if nanos != 0 {
            writeTag(ProtobufExposition.Field.timestampNanos, .varint)
            writeVarint(UInt64(nanos))
        }
        endLengthPrefixed(message)
    }
}
