// What a reader checks first when it opens a sealed local segment — the file header, the footer and the index head
// (`SegmentReader.openingRanges`) — read with pread into memory of their own rather than through the file's
// mapping. The first touch of a mapped page is a fault that maps the pages around it as well, and all of them are
// unmapped again at exit: about 5 µs a place touched, against about 0.6 µs for a read (measured over 100 sealed
// segments). A trace look-up opens every segment and reads little else of most of them.
#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

final class SegmentOpeningBytes {
    let fileSize: Int
    /// The file's first `fileHeaderSize` bytes (fewer when the file is shorter).
    let header: UnsafeRawBufferPointer
    /// The file's last `footerSize` bytes (all of it when the file is shorter).
    let footer: UnsafeRawBufferPointer
    /// The index block's header and the head of its payload, from `start`; nil when the footer does not parse
    /// (the reader then reports why, from the footer).
    let indexHead: (start: Int, bytes: UnsafeRawBufferPointer)?
    private let storage: [UnsafeMutableRawBufferPointer]

    init(fd: Int32, size: Int, path: String) throws(LogFormatError) {
        fileSize = size
        var storage: [UnsafeMutableRawBufferPointer] = []
        func read(_ range: Range<Int>) throws(LogFormatError) -> UnsafeRawBufferPointer {
            let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: range.count, alignment: 8)
            storage.append(buffer)
            let n = try FileIO.pread(fd, into: buffer, at: range.lowerBound, path: path)
            return UnsafeRawBufferPointer(rebasing: buffer[..<n])
        }
        do throws(LogFormatError) {
            header = try read(0..<min(size, FormatConstants.fileHeaderSize))
            footer = try read(max(0, size - FormatConstants.footerSize)..<size)
            if let parsed = try? SegmentFooter.parse(last: footer, fileSize: size) {
                let range = SegmentReader.openingRanges(parsed, fileSize: size)[1]
                indexHead = (range.lowerBound, try read(range))
            } else {
                indexHead = nil
            }
        } catch {
            for b in storage { b.deallocate() }
            throw error
        }
        self.storage = storage
    }

    deinit {
        for b in storage { b.deallocate() }
    }

    /// The copy's bytes from `offset` to the end of the index head, when it holds `offset`.
    func indexBytes(from offset: Int) -> UnsafeRawBufferPointer? {
        guard let (start, bytes) = indexHead, offset >= start, offset < start + bytes.count else { return nil }
        return UnsafeRawBufferPointer(rebasing: bytes[(offset - start)...])
    }
}
