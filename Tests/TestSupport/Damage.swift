// Byte damage for hostile-file tests: flip, cut and zero bytes of a file in place.
import Foundation
import LogFormat

public enum Damage {
    /// XORs the byte at `offset` with `mask`.
    public static func flip(_ path: String, at offset: Int, mask: UInt8 = 0x01) throws {
        var bytes = try [UInt8](Data(contentsOf: URL(fileURLWithPath: path)))
        bytes[offset] ^= mask
        try Data(bytes).write(to: URL(fileURLWithPath: path))
    }

    /// Keeps the first `length` bytes.
    public static func cut(_ path: String, to length: Int) throws {
        let bytes = try Data(contentsOf: URL(fileURLWithPath: path))
        try bytes.prefix(length).write(to: URL(fileURLWithPath: path))
    }

    /// Zeroes the bytes of `range` that exist.
    public static func zero(_ path: String, range: Range<Int>) throws {
        var bytes = try [UInt8](Data(contentsOf: URL(fileURLWithPath: path)))
        for i in range where i < bytes.count { bytes[i] = 0 }
        try Data(bytes).write(to: URL(fileURLWithPath: path))
    }

    /// The file's size, or -1 when it cannot be read.
    public static func size(_ path: String) -> Int { FileIO.fileSize(path: path) ?? -1 }
}
