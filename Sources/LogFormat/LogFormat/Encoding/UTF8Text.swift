// UTF-8 validation for the ingest hot paths. `String(validating:as:)` looks up generic metadata on every call
// (3.6 % of the collector's CPU under OTLP/gRPC load, BENCHMARKS.md, issue 15); bytes that are all ASCII, as
// almost every attribute key and value is, are valid UTF-8 as they are and need no more than a word-wise test.

public enum UTF8Text {
    /// The string `bytes` spell when they are valid UTF-8, else nil: what `String(validating: bytes, as:
    /// UTF8.self)` returns, without its per-call cost for ASCII.
    @inlinable
    public static func string(validating bytes: UnsafeBufferPointer<UInt8>) -> String? {
        isASCII(bytes) ? String(decoding: bytes, as: UTF8.self) : String(validating: bytes, as: UTF8.self)
    }

    /// Whether every byte is below 0x80, eight bytes at a time.
    @inlinable
    public static func isASCII(_ bytes: UnsafeBufferPointer<UInt8>) -> Bool {
        guard let base = bytes.baseAddress else { return true }
        let raw = UnsafeRawPointer(base)
        let n = bytes.count
        var i = 0
        var high: UInt64 = 0
        while i + 8 <= n {
            high |= raw.loadUnaligned(fromByteOffset: i, as: UInt64.self)
            i += 8
        }
        while i < n {
            high |= UInt64(base[i])
            i += 1
        }
        return high & 0x8080_8080_8080_8080 == 0
    }
}
