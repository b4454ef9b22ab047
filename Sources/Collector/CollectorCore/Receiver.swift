// The receivers, as a type: every place that needs to know which one a request arrived over (routing, content
// negotiation, metric labels, the senders file, the normalising stage) asks this enum, not a route string.

/// A receiver of the collector: one protocol binding for one signal.
public enum Receiver: Sendable, Hashable, CaseIterable {
    case otlpHTTPTraces, otlpHTTPLogs, otlpGRPCTraces, otlpGRPCLogs, zipkin, accessNDJSON, syslogUDP, syslogTCP

    /// The `receiver` label of its metrics.
    public var label: String {
        switch self {
        case .otlpHTTPTraces: "otlp_http_traces"
        case .otlpHTTPLogs: "otlp_http_logs"
        case .otlpGRPCTraces: "otlp_grpc_traces"
        case .otlpGRPCLogs: "otlp_grpc_logs"
        case .zipkin: "zipkin_json"
        case .accessNDJSON: "access_ndjson"
        case .syslogUDP: "syslog_udp"
        case .syslogTCP: "syslog_tcp"
        }
    }

    /// Its HTTP route, for the receivers served over HTTP.
    public var route: String? {
        switch self {
        case .otlpHTTPTraces: "/v1/traces"
        case .otlpHTTPLogs: "/v1/logs"
        case .zipkin: "/api/v2/spans"
        case .accessNDJSON: "/v1/access"
        default: nil
        }
    }

    /// The receiver serving an HTTP route (the path without its query), or nil.
    public init?(route: some StringProtocol) {
        guard let r = Self.http.first(where: { $0.route.map { $0 == route } ?? false }) else { return nil }
        self = r
    }

    /// The receivers served over HTTP, in the order the 404 answer names them.
    public static let http: [Receiver] = [.otlpHTTPTraces, .otlpHTTPLogs, .accessNDJSON, .zipkin]

    /// Bodies and answers in JSON whatever the request says (access lines, Zipkin).
    var answersInJSON: Bool { self == .accessNDJSON || self == .zipkin }

    /// Its name in the senders file; nil for syslog over UDP, whose datagrams carry no credentials.
    public var senderKind: ReceiverKind? {
        switch self {
        case .otlpHTTPTraces, .otlpHTTPLogs: .otlpHTTP
        case .otlpGRPCTraces, .otlpGRPCLogs: .otlpGRPC
        case .zipkin: .zipkin
        case .accessNDJSON: .access
        case .syslogTCP: .syslogTCP
        case .syslogUDP: nil
        }
    }
}
