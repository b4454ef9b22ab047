// HTTP request bodies sent with Content-Encoding gzip or deflate, inflated under a cap before any parser sees them.
import CZlib

/// gzip (RFC 1952) and zlib request bodies, inflated with a hard cap so a small hostile body cannot expand
/// without bound (a "gzip bomb").
public enum BodyInflation {
    public enum Failure: Error, Sendable, Equatable {
        /// The body expands past `limit` bytes.
        case tooLarge(limit: Int)
        /// The body is not a complete, valid stream.
        case invalid(String)
    }

    /// Inflates a gzip (or zlib: the header is detected) stream to at most `limit` bytes.
    public static func inflate(_ input: [UInt8], limit: Int) -> Result<[UInt8], Failure> {
        var stream = z_stream()
        // windowBits 15 + 32: detect gzip or zlib headers automatically.
        guard czlib_inflateInit2(&stream, 15 + 32) == Z_OK else { return .failure(.invalid("zlib could not start")) }
        defer { inflateEnd(&stream) }
        var out: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 64 << 10)
        var status: Int32 = Z_OK
        let result: Failure? = input.withUnsafeBufferPointer { inBuf in
            stream.next_in = UnsafeMutablePointer(mutating: inBuf.baseAddress)
            stream.avail_in = uInt(inBuf.count)
            while true {
                let produced: Int = chunk.withUnsafeMutableBufferPointer { outBuf in
                    stream.next_out = outBuf.baseAddress
                    stream.avail_out = uInt(outBuf.count)
                    status = CZlib.inflate(&stream, Z_NO_FLUSH)
                    return outBuf.count - Int(stream.avail_out)
                }
                if status != Z_OK && status != Z_STREAM_END && !(status == Z_BUF_ERROR && produced > 0) {
                    let message = stream.msg.map { String(cString: $0) } ?? "status \(status)"
                    return .invalid(
                        status == Z_BUF_ERROR ? "the compressed body ends early" : "damaged compressed body: \(message)"
                    )
                }
                if out.count + produced > limit { return .tooLarge(limit: limit) }
                out.append(contentsOf: chunk[0..<produced])
                if status == Z_STREAM_END {
                    return stream.avail_in == 0
                        ? nil : .invalid("\(stream.avail_in) bytes after the end of the compressed stream")
                }
                if produced == 0 && stream.avail_in == 0 { return .invalid("the compressed body ends early") }
            }
        }
        if let result { return .failure(result) }
        return .success(out)
    }
}
