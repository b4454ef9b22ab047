// What every command writes besides its answer: notes and progress on stderr, and records in an output format.
import AuditQuery
import Foundation
import LogFormat

func note(_ s: String) { writeStderr(s + "\n") }

/// Writes `text` to standard error with write(2): Foundation's `FileHandle` and a `Data` copy cost more than the
/// write in a light query. A failure is ignored (a note must not end the answer).
func writeStderr(_ text: String) {
    var text = text
    text.withUTF8 { _ = writeAll(2, UnsafeRawBufferPointer($0)) }
}

/// Writes all of `bytes` to `fd`, retrying short writes and EINTR; false when a write fails (`errno` says why).
private func writeAll(_ fd: Int32, _ bytes: UnsafeRawBufferPointer) -> Bool {
    var offset = 0
    while offset < bytes.count {
        let n = write(fd, bytes.baseAddress! + offset, bytes.count - offset)
        if n < 0 {
            if errno == EINTR { continue }
            return false
        }
        offset += n
    }
    return true
}

let stderrIsTerminal = isatty(2) == 1
let stdoutIsTerminal = isatty(1) == 1

/// Progress on stderr, only when it is a terminal.
func progress(_ s: String) {
    guard stderrIsTerminal else { return }
    writeStderr("\r\u{1B}[K" + s)
}

func progressDone() {
    guard stderrIsTerminal else { return }
    writeStderr("\r\u{1B}[K")
}

func emit(_ records: [StoredRecord], format: OutputFormat, zone: TimeZoneSpec, palette: Palette) {
    switch format {
    case .table: print(Rendering.table(records, zone: zone, palette: palette))
    case .json:
        var memo = EventJSONMemo()
        writeLines(records) { RecordJSON.line($0, into: &$1, memo: &memo) }
    case .csv: FileHandle.standardOutput.write(Data(CSVOutput.table(records).utf8))
    case .otlp: emitOTLP(records.map(\.event))
    }
}

/// Writes one line per item to standard output, rendered straight into a buffer that is flushed every 128 KiB: a
/// large answer is never held as one string, and the buffer's pages are few (each page of a fresh buffer is a
/// fault; a mebibyte of them was a tenth of a heavy search).
func writeLines<T, E: Error>(_ items: [T], _ render: (T, inout [UInt8]) throws(E) -> Void) throws(E) {
    var buffer: [UInt8] = []
    buffer.reserveCapacity(128 << 10 + 32 << 10)
    // By index: the item is lent to `render`, not copied (a copy retains every reference an event holds).
    for i in items.indices {
        try render(items[i], &buffer)
        buffer.append(UInt8(ascii: "\n"))
        if buffer.count >= 128 << 10 {
            writeStdout(buffer)
            buffer.removeAll(keepingCapacity: true)
        }
    }
    writeStdout(buffer)
}

/// Ends the process once a large answer is written: releasing tens of thousands of events one by one costs more
/// than a tenth of the query, and the kernel takes the memory back at once. Buffered output is flushed by exit.
func exitAfterAnswer() -> Never {
    exit(0)
}

/// Writes all of `bytes` to file descriptor 1 (retrying short writes); a closed pipe ends the process quietly.
func writeStdout(_ bytes: [UInt8]) {
    bytes.withUnsafeBytes { writeStdout($0) }
}

/// `writeStdout` of bytes in memory the caller holds.
func writeStdout(_ bytes: UnsafeRawBufferPointer) {
    if !writeAll(1, bytes) { exit(errno == EPIPE ? 0 : 1) }
}

/// The spans as one line (for /v1/traces), then the access and log events, if any, as another (for /v1/logs).
func emitOTLP(_ events: [AuditEvent]) {
    print(OTLPExport.json(events))
    if let logs = OTLPExport.logsJSON(events) { print(logs) }
}

/// `writeLines` with the rendering on every core (`writeLinesOnEveryCore`): the same bytes on standard output.
/// `renderer` is evaluated once per core.
func writeLinesOnEveryCore<T: Sendable, R, E: Error>(
    _ items: [T], run: Int, key: (T) -> Int32, renderer: @autoclosure @escaping @Sendable () -> R,
    _ render: @Sendable (inout R, T, LineArena) throws(E) -> Void
) throws(E) {
    try AuditQuery.writeLinesOnEveryCore(items, run: run, key: key, renderer: renderer, render) {
        writeStdout(UnsafeRawBufferPointer($0))
    }
}
