// What every command writes besides its answer: notes and progress on stderr, and records in an output format.
import AuditQuery
import Foundation
import LogFormat

func note(_ s: String) { FileHandle.standardError.write(Data((s + "\n").utf8)) }

let stderrIsTerminal = isatty(2) == 1
let stdoutIsTerminal = isatty(1) == 1

/// Progress on stderr, only when it is a terminal.
func progress(_ s: String) {
    guard stderrIsTerminal else { return }
    FileHandle.standardError.write(Data(("\r\u{1B}[K" + s).utf8))
}

func progressDone() {
    guard stderrIsTerminal else { return }
    FileHandle.standardError.write(Data("\r\u{1B}[K".utf8))
}

func emit(_ records: [StoredRecord], format: OutputFormat, zone: TimeZoneSpec, palette: Palette) {
    switch format {
    case .table: print(Rendering.table(records, zone: zone, palette: palette))
    case .json: print(records.map { RecordJSON.line($0) }.joined(separator: "\n"))
    case .csv: FileHandle.standardOutput.write(Data(CSVOutput.table(records).utf8))
    case .otlp: emitOTLP(records.map(\.event))
    }
}

/// The spans as one line (for /v1/traces), then the access and log events, if any, as another (for /v1/logs).
func emitOTLP(_ events: [AuditEvent]) {
    print(OTLPExport.json(events))
    if let logs = OTLPExport.logsJSON(events) { print(logs) }
}
