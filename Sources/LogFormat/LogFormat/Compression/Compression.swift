// Block compression (LZ4 for the hot tier, zlib for the archive tier) and the CRC-32 used by every
// checksummed structure. Thin wrappers over the system libraries.
import CCRC32
import CLZ4
import CZlib

public enum BlockCompression {
    /// Compresses `input` with `codec`. zlib `level` is 1…9 (default 6); LZ4 ignores it.
    public static func compress(
        _ input: UnsafeRawBufferPointer, codec: CompressionCodec, level: Int32 = 6, into output: inout [UInt8]
    ) throws(LogFormatError) {
        output.removeAll(keepingCapacity: true)
        switch codec {
        case .none:
            output.append(contentsOf: input)
        case .lz4:
            try lz4Block(input, into: &output, encoder: "LZ4") { LZ4_compress_default($0, $1, $2, $3) }
        case .zlib:
            try zlibDeflate(input, level: level, into: &output)
        }
    }

    /// Compresses `input` as an LZ4 block with LZ4's high-compression encoder at `level` (`LZ4HC_CLEVEL_MIN` 3 …
    /// `LZ4HC_CLEVEL_MAX` 12): the same block format as `compress(_:codec: .lz4 …)`, read by the same decoder (at
    /// the same speed), only denser and slower to write. Column blocks use it for their structured columns.
    public static func compressLZ4HC(
        _ input: UnsafeRawBufferPointer, level: Int32, into output: inout [UInt8]
    ) throws(LogFormatError) {
        output.removeAll(keepingCapacity: true)
        try lz4Block(input, into: &output, encoder: "LZ4 HC") { LZ4_compress_HC($0, $1, $2, $3, level) }
    }

    /// One LZ4 block of `input` by `encoder` (source, destination, source size, destination capacity; returns
    /// the bytes written, 0 on failure), into `output` sized to LZ4's bound.
    private static func lz4Block(
        _ input: UnsafeRawBufferPointer, into output: inout [UInt8], encoder name: String,
        _ encoder: (UnsafePointer<CChar>?, UnsafeMutablePointer<CChar>, Int32, Int32) -> Int32
    ) throws(LogFormatError) {
        guard input.count <= Int(LZ4_MAX_INPUT_SIZE) else {
            throw LogFormatError(.limitExceeded, "block of \(input.count) bytes is too large for LZ4")
        }
        let bound = Int(LZ4_compressBound(Int32(input.count)))
        output = [UInt8](unsafeUninitializedCapacity: bound) { buffer, initialized in
            let n = encoder(
                input.baseAddress?.assumingMemoryBound(to: CChar.self),
                UnsafeMutableRawPointer(buffer.baseAddress!).assumingMemoryBound(to: CChar.self),
                Int32(input.count), Int32(bound))
            initialized = Int(max(n, 0))
        }
        if output.isEmpty && !input.isEmpty {
            throw LogFormatError(.compression, "\(name) compression of \(input.count) bytes failed")
        }
    }

    /// Decompresses `input` that must expand to exactly `rawLength` bytes.
    public static func decompress(
        _ input: UnsafeRawBufferPointer, codec: CompressionCodec, rawLength: Int, into output: inout [UInt8]
    ) throws(LogFormatError) {
        output.removeAll(keepingCapacity: true)
        switch codec {
        case .none:
            guard input.count == rawLength else {
                throw LogFormatError(
                    .malformed, "uncompressed block holds \(input.count) bytes, header says \(rawLength)")
            }
            output.append(contentsOf: input)
        case .lz4:
            var produced: Int32 = 0
            output = [UInt8](unsafeUninitializedCapacity: rawLength) { buffer, initialized in
                produced = LZ4_decompress_safe(
                    input.baseAddress?.assumingMemoryBound(to: CChar.self),
                    UnsafeMutableRawPointer(buffer.baseAddress!).assumingMemoryBound(to: CChar.self),
                    Int32(input.count), Int32(rawLength))
                initialized = Int(max(produced, 0))
            }
            guard produced == Int32(rawLength) else {
                throw LogFormatError(
                    .compression,
                    produced < 0
                        ? "LZ4 data is damaged (decoder error \(produced))"
                        : "LZ4 data expands to \(produced) bytes, header says \(rawLength)")
            }
        case .zlib:
            try zlibInflate(input, rawLength: rawLength, into: &output)
        }
    }

    private static func zlibDeflate(
        _ input: UnsafeRawBufferPointer, level: Int32, into output: inout [UInt8]
    ) throws(LogFormatError) {
        var stream = z_stream()
        guard czlib_deflateInit2(&stream, level, Z_DEFLATED, 15, 9, Z_DEFAULT_STRATEGY) == Z_OK else {
            throw LogFormatError(.compression, "zlib deflateInit2 failed")
        }
        defer { deflateEnd(&stream) }
        let bound = Int(deflateBound(&stream, uLong(input.count)))
        var status: Int32 = Z_OK
        output = [UInt8](unsafeUninitializedCapacity: bound) { buffer, initialized in
            stream.next_in = UnsafeMutablePointer(mutating: input.baseAddress?.assumingMemoryBound(to: Bytef.self))
            stream.avail_in = uInt(input.count)
            stream.next_out = buffer.baseAddress
            stream.avail_out = uInt(bound)
            status = deflate(&stream, Z_FINISH)
            initialized = Int(stream.total_out)
        }
        guard status == Z_STREAM_END else {
            throw LogFormatError(.compression, "zlib deflate did not finish (status \(status))")
        }
    }

    private static func zlibInflate(
        _ input: UnsafeRawBufferPointer, rawLength: Int, into output: inout [UInt8]
    ) throws(LogFormatError) {
        var stream = z_stream()
        guard czlib_inflateInit2(&stream, 15) == Z_OK else {
            throw LogFormatError(.compression, "zlib inflateInit2 failed")
        }
        defer { inflateEnd(&stream) }
        var status: Int32 = Z_OK
        var produced = 0
        // One spare byte so that data expanding beyond rawLength is detected rather than cut off.
        output = [UInt8](unsafeUninitializedCapacity: rawLength + 1) { buffer, initialized in
            stream.next_in = UnsafeMutablePointer(mutating: input.baseAddress?.assumingMemoryBound(to: Bytef.self))
            stream.avail_in = uInt(input.count)
            stream.next_out = buffer.baseAddress
            stream.avail_out = uInt(rawLength + 1)
            status = inflate(&stream, Z_FINISH)
            produced = Int(stream.total_out)
            initialized = produced
        }
        guard status == Z_STREAM_END, produced == rawLength else {
            let why =
                status == Z_DATA_ERROR ? "damaged zlib data" : "zlib data ended early or expands to \(produced)+ bytes"
            output.removeAll()
            throw LogFormatError(.compression, "\(why); header says \(rawLength) bytes (status \(status))")
        }
        guard stream.avail_in == 0 else {
            throw LogFormatError(.compression, "\(stream.avail_in) bytes after the end of the zlib stream")
        }
    }
}

/// CRC-32 (ISO-HDLC polynomial, as zlib's `crc32`).
public enum Checksum {
    /// Whole 16-byte blocks from 64 bytes on are folded with the carry-less multiply where the processor has it
    /// (`ccrc32_fold`, about three times zlib's speed: block payloads and index sections are checked on every read),
    /// the rest by zlib; the same checksum either way.
    public static func crc32(_ bytes: UnsafeRawBufferPointer) -> UInt32 {
        guard let base = bytes.baseAddress else { return 0 }
        var crc: UInt32 = 0
        let p = base.assumingMemoryBound(to: UInt8.self)
        let done = ccrc32_fold(&crc, p, bytes.count)
        return UInt32(CZlib.crc32(uLong(crc), p + done, uInt(bytes.count - done)))
    }

    public static func crc32(_ bytes: [UInt8]) -> UInt32 {
        bytes.withUnsafeBytes { crc32($0) }
    }

    public static func crc32(_ bytes: ArraySlice<UInt8>) -> UInt32 {
        bytes.withUnsafeBytes { crc32($0) }
    }
}
