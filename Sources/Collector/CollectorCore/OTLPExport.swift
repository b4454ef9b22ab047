// What the one OTLP ingest path needs to know of a signal (traces or logs): its names in answers, how to read
// it from OTLP/JSON, how to import it, its gRPC receiver and the response that reports partial success.
// HTTP and gRPC bindings are generic over this, so traces and logs share every line of the path.
import CollectorParsers
import OTLPBridge
import OTLPProto
import SwiftProtobuf

public protocol OTLPExport: SwiftProtobuf.Message, Sendable {
    associatedtype Response: SwiftProtobuf.Message & Sendable
    /// "traces" or "logs", as error messages name the signal.
    static var signal: String { get }
    /// The request message's name without its package, as HTTP error messages name it.
    static var shortName: String { get }
    /// The receiver of this signal over OTLP/gRPC.
    static var grpcReceiver: Receiver { get }
    /// The raw events of an OTLP/JSON body and the items rejected one by one, in one pass over the bytes; a body
    /// of more than `maxItems` items, or `maxValues` attributes, values, span events and links, is refused when
    /// the next one starts.
    static func imported(json bytes: [UInt8], maxItems: Int, maxValues: Int) throws(OTLPJSON.DecodeError)
        -> OTLPMapping.Imported
    /// The raw events of the request (attributes as sent) and the items rejected one by one.
    func imported() -> OTLPMapping.Imported
    /// The same straight from protobuf bytes, without building the message (the receivers' path); a request of
    /// more than `maxItems` items is refused before any is decoded, one of more than `maxValues` values when the
    /// next one is met.
    static func imported(protobuf bytes: [UInt8], maxItems: Int, maxValues: Int) throws(OTLPWireError)
        -> OTLPMapping.Imported
    /// The export response for what was stored (partial success when items were rejected).
    static func response(_ stored: IngestService.Stored) -> Response
}

extension OTLPTraceRequest: OTLPExport {
    public static var signal: String { "traces" }
    public static var shortName: String { "ExportTraceServiceRequest" }
    public static var grpcReceiver: Receiver { .otlpGRPCTraces }
    public static func imported(json bytes: [UInt8], maxItems: Int, maxValues: Int) throws(OTLPJSON.DecodeError)
        -> OTLPMapping.Imported
    {
        try OTLPJSON.traces(json: bytes, maxItems: maxItems, maxValues: maxValues)
    }
    public func imported() -> OTLPMapping.Imported { OTLPMapping.events(from: self) }
    public static func imported(protobuf bytes: [UInt8], maxItems: Int, maxValues: Int) throws(OTLPWireError)
        -> OTLPMapping.Imported
    {
        try OTLPWireDecoder.traces(protobuf: bytes, maxItems: maxItems, maxValues: maxValues)
    }
    public static func response(
        _ stored: IngestService.Stored
    ) -> Opentelemetry_Proto_Collector_Trace_V1_ExportTraceServiceResponse {
        stored.traceResponse
    }
}

extension OTLPLogsRequest: OTLPExport {
    public static var signal: String { "logs" }
    public static var shortName: String { "ExportLogsServiceRequest" }
    public static var grpcReceiver: Receiver { .otlpGRPCLogs }
    public static func imported(json bytes: [UInt8], maxItems: Int, maxValues: Int) throws(OTLPJSON.DecodeError)
        -> OTLPMapping.Imported
    {
        try OTLPJSON.logs(json: bytes, maxItems: maxItems, maxValues: maxValues)
    }
    public func imported() -> OTLPMapping.Imported { OTLPMapping.events(from: self) }
    public static func imported(protobuf bytes: [UInt8], maxItems: Int, maxValues: Int) throws(OTLPWireError)
        -> OTLPMapping.Imported
    {
        try OTLPWireDecoder.logs(protobuf: bytes, maxItems: maxItems, maxValues: maxValues)
    }
    public static func response(
        _ stored: IngestService.Stored
    ) -> Opentelemetry_Proto_Collector_Logs_V1_ExportLogsServiceResponse {
        stored.logsResponse
    }
}
