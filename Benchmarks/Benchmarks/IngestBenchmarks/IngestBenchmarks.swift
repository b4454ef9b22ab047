// Micro-benchmarks of the collector's ingest path, stage by stage, on request bodies made from the realistic
// synthetic traffic (TrafficGenerator): each receiver's decoder (OTLP protobuf wire decoder, the one-pass
// access-line scanner, Zipkin JSON, OTLP/JSON), the normaliser on what a receiver decoded, and what the writer
// does before the append (canonical record encoding, SHA-256 leaf hash, index terms: `PreparedBatch`).
//
// Every iteration handles exactly `Bodies.perIteration` events, so a malloc count divided by 1,000 is the
// allocations per event. The counts are committed as static thresholds in Thresholds/ (ordo-one/benchmark's
// `thresholds update`), checked by `thresholds check`: see BENCHMARKS.md.
import Benchmark
import CollectorCore
import CollectorParsers
import Foundation
import LogFormat
import OTLPBridge
import SwiftProtobuf
import SyntheticTraffic

/// Request bodies and decoded events, built once before measuring.
final class Bodies: @unchecked Sendable {
    // @unchecked: every property is assigned once in the initialiser of the shared instance, then only read.
    static let shared = Bodies()
    static let perIteration = 1_000

    /// 1,000 spans as one OTLP/HTTP protobuf body (grouped per resource and scope, as SDKs send them).
    let otlpProtobuf: [UInt8]
    /// The same spans as OTLP/JSON (swift-protobuf's JSON: base64 ids, which the receiver accepts).
    let otlpJSON: [UInt8]
    /// The same spans as a Zipkin v2 JSON array.
    let zipkinJSON: [UInt8]
    /// 1,000 nginx access lines as NDJSON.
    let accessNDJSON: [UInt8]
    /// The spans as the OTLP receiver decodes them (raw: audit fields not yet derived).
    let rawSpans: [AuditEvent]
    /// The access lines as the NDJSON receiver decodes them.
    let rawAccess: [AuditEvent]
    /// The spans after normalising, as the writer takes them.
    let normalizedSpans: [AuditEvent]
    /// The access lines after normalising, as the writer takes them.
    let normalizedAccess: [AuditEvent]

    init() {
        var g = TrafficGenerator(seed: 15)
        var spans: [AuditEvent] = []
        var access: [AuditEvent] = []
        while spans.count < Self.perIteration || access.count < Self.perIteration {
            for e in g.nextRequest() {
                if e.kind == .access { access.append(e) } else { spans.append(e) }
            }
        }
        spans = Array(spans.prefix(Self.perIteration))
        access = Array(access.prefix(Self.perIteration))
        let request = OTLPMapping.traceRequest(from: spans)
        otlpProtobuf = try! request.serializedBytes()
        otlpJSON = try! request.jsonUTF8Bytes()
        zipkinJSON = Array(("[" + spans.map(ZipkinJSON.span).joined(separator: ",") + "]").utf8)
        accessNDJSON = Array(access.map { NginxAccessLine.render($0) + "\n" }.joined().utf8)

        rawSpans = try! OTLPWireDecoder.traces(protobuf: otlpProtobuf).events
        rawAccess = try! AccessEventMapping.events(fromNDJSON: accessNDJSON).events
        precondition(rawSpans.count == Self.perIteration && rawAccess.count == Self.perIteration)
        precondition(try! ZipkinMapping.events(fromJSON: zipkinJSON).events.count == Self.perIteration)
        precondition(
            try! OTLPJSON.traces(json: otlpJSON).events.count == Self.perIteration)
        var normalized = rawSpans
        Normalizer().normalize(&normalized, from: .otlpHTTPTraces)
        normalizedSpans = normalized
        var lines = rawAccess
        Normalizer().normalize(&lines, from: .accessNDJSON)
        normalizedAccess = lines
    }
}

// Names without spaces or slashes: `thresholds update` writes each file under the name with those replaced by
// `_`, while `thresholds check` looks for the name as it is.
let benchmarks: @Sendable () -> Void = {
    // The committed counts are static thresholds (Thresholds/); this is the tolerance around them. 2 %: a
    // decoder's count can move by a few hundred in 78,000 between runs (Zipkin JSON did); the others repeat exactly.
    let configuration = Benchmark.Configuration(
        metrics: [.wallClock, .throughput, .mallocCountTotal], maxDuration: .seconds(3), maxIterations: 200,
        thresholds: [.mallocCountTotal: .init(relative: [.p90: 2.0])])
    // The decoders as the receivers call them: with the collector's default limits on a request's items and values.
    let limits = IngestLimits()

    Benchmark("decode.otlp-protobuf.1000-spans", configuration: configuration) { benchmark in
        let body = Bodies.shared.otlpProtobuf
        benchmark.startMeasurement()
        let imported = try OTLPWireDecoder.traces(
            protobuf: body, maxItems: limits.maxItemsPerRequest, maxValues: limits.maxValuesPerRequest)
        blackHole(imported.events.count)
    }

    Benchmark("decode.access-ndjson.1000-lines", configuration: configuration) { benchmark in
        let body = Bodies.shared.accessNDJSON
        benchmark.startMeasurement()
        blackHole(try AccessEventMapping.events(fromNDJSON: body, maxValues: limits.maxValuesPerRequest).events.count)
    }

    Benchmark("decode.zipkin-json.1000-spans", configuration: configuration) { benchmark in
        let body = Bodies.shared.zipkinJSON
        benchmark.startMeasurement()
        var valuesLeft = limits.maxValuesPerRequest
        blackHole(try ZipkinMapping.events(fromJSON: body, valuesLeft: &valuesLeft).events.count)
    }

    Benchmark("decode.otlp-json.1000-spans", configuration: configuration) { benchmark in
        let body = Bodies.shared.otlpJSON
        benchmark.startMeasurement()
        blackHole(
            try OTLPJSON.traces(
                json: body, maxItems: limits.maxItemsPerRequest, maxValues: limits.maxValuesPerRequest
            ).events.count)
    }

    var options = NormalizerOptions()
    options.redaction.hmacSecret = Array("benchmark-secret-0123456789abcdef".utf8)
    let normalizer = Normalizer(options: options)

    Benchmark(
        "normalize.otlp-spans.1000-events", configuration: configuration
    ) { benchmark in
        var events = Bodies.shared.rawSpans
        benchmark.startMeasurement()
        normalizer.normalize(&events, from: .otlpHTTPTraces)
        benchmark.stopMeasurement()
        blackHole(events.count)
    }

    Benchmark("normalize.access-lines.1000-events", configuration: configuration) { benchmark in
        var events = Bodies.shared.rawAccess
        benchmark.startMeasurement()
        normalizer.normalize(&events, from: .accessNDJSON)
        benchmark.stopMeasurement()
        blackHole(events.count)
    }

    for (name, events) in [
        ("spans", Bodies.shared.normalizedSpans), ("access-lines", Bodies.shared.normalizedAccess),
    ] {
        Benchmark("write-prep.encode-sha256-terms.1000-\(name)", configuration: configuration) { benchmark in
            benchmark.startMeasurement()
            let batch = try PreparedBatch(events)
            blackHole(batch.count)
        }
    }
}
