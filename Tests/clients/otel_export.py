"""Exports spans and log records with the real OpenTelemetry Python SDK to a collector, then prints what it
sent as JSON, so the Swift test can compare the stored events field by field.

usage: otel_export.py BASE_URL protobuf|json|grpc [gzip]
(for grpc, BASE_URL is http://HOST:PORT of the collector's OTLP/gRPC listener)
"""
import json
import sys
import time

from recording import Recording

from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExportResult
from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.sdk._logs.export import SimpleLogRecordProcessor
from opentelemetry.trace import Link, SpanKind, Status, StatusCode

base, protocol = sys.argv[1], sys.argv[2]
gzip = len(sys.argv) > 3 and sys.argv[3] == "gzip"

if protocol == "protobuf":
    from opentelemetry.exporter.otlp.proto.http import Compression
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter
    kwargs = {"compression": Compression.Gzip} if gzip else {}
elif protocol == "grpc":
    from grpc import Compression as GRPCCompression
    from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter as GRPCSpanExporter
    from opentelemetry.exporter.otlp.proto.grpc._log_exporter import OTLPLogExporter as GRPCLogExporter
    grpc_kwargs = {"insecure": True, "endpoint": base.removeprefix("http://")}
    if gzip:
        grpc_kwargs["compression"] = GRPCCompression.Gzip

    # The gRPC exporters take the collector's address, not a URL per signal.
    def OTLPSpanExporter(endpoint, **_):
        return GRPCSpanExporter(**grpc_kwargs)

    def OTLPLogExporter(endpoint, **_):
        return GRPCLogExporter(**grpc_kwargs)

    kwargs = {}
else:
    from opentelemetry.exporter.otlp.json.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.exporter.otlp.json.http._log_exporter import OTLPLogExporter
    kwargs = {}




resource = Resource.create({"service.name": "orders", "service.version": "1.2.3", "deployment.environment": "test"})
span_exporter = Recording(OTLPSpanExporter(endpoint=base + "/v1/traces", **kwargs))
provider = TracerProvider(resource=resource)
provider.add_span_processor(SimpleSpanProcessor(span_exporter))
tracer = provider.get_tracer("audit.test", "0.1.0")

finished = []
with tracer.start_as_current_span("GET /api/v1/orders", kind=SpanKind.SERVER, attributes={
    "http.request.method": "GET", "url.path": "/api/v1/orders", "url.query": "page=2",
    "http.response.status_code": 200, "enduser.id": "alice", "user.roles": ["auditors", "admins"],
    "ratio": 0.25, "retried": False, "sizes": [1, 2, 3], "names": ["a", "ü"], "weights": [0.5, 1.5],
}) as parent:
    parent.add_event("cache.miss", {"key": "orders:page:2", "attempt": 1})
    with tracer.start_as_current_span("SELECT analytics", kind=SpanKind.CLIENT, attributes={
        "db.system.name": "microsoft.sql_server", "db.namespace": "sales", "server.address": "pool.sql.example.net",
        # A client forging the collector's own annotations: kept, but under sender.audit.*.
        "audit.redacted": ["nothing"], "audit.sender": "forged-sender", "audit.token.claims.sub": "mallory",
    }, links=[Link(parent.get_span_context(), {"link.reason": "same request"})]) as child:
        child.set_status(Status(StatusCode.ERROR, "timeout after 30s"))
        finished.append(child)
    finished.append(parent)
provider.shutdown()

logger_exporter = Recording(OTLPLogExporter(endpoint=base + "/v1/logs", **kwargs))
log_provider = LoggerProvider(resource=resource)
log_provider.add_log_record_processor(SimpleLogRecordProcessor(logger_exporter))
otel_logger = log_provider.get_logger("audit.test.logs")
try:
    from opentelemetry._logs import LogRecord, SeverityNumber
    otel_logger.emit(LogRecord(timestamp=time.time_ns(), body="login failed", severity_number=SeverityNumber.WARN,
                               severity_text="WARN", attributes={"user.id": "bob"}))
except Exception as error:  # API differences across SDK versions are reported, not hidden
    print(json.dumps({"log_error": repr(error)}), file=sys.stderr)
log_provider.shutdown()


def tagged(v):
    """Values with their type, as JSON cannot tell 1 from 1.0 or true from 1 reliably."""
    if isinstance(v, bool):
        return {"b": v}
    if isinstance(v, int):
        return {"i": str(v)}
    if isinstance(v, float):
        return {"d": v}
    if isinstance(v, str):
        return {"s": v}
    if isinstance(v, (list, tuple)):
        return {"a": [tagged(x) for x in v]}
    raise TypeError(repr(v))


def attrs(a):
    return {k: tagged(v) for k, v in (a or {}).items()}


spans = []
for s in finished:
    ctx = s.get_span_context()
    spans.append({
        "trace_id": format(ctx.trace_id, "032x"), "span_id": format(ctx.span_id, "016x"),
        "parent_span_id": format(s.parent.span_id, "016x") if s.parent else None,
        "name": s.name, "kind": s.kind.value, "start": s.start_time, "end": s.end_time,
        "attributes": attrs(s.attributes), "events": [{"name": e.name, "time": e.timestamp, "attributes": attrs(e.attributes)} for e in s.events],
        "links": [{"trace_id": format(l.context.trace_id, "032x"), "span_id": format(l.context.span_id, "016x"), "attributes": attrs(l.attributes)} for l in s.links],
        "status": s.status.status_code.value, "status_message": s.status.description or "",
    })
print(json.dumps({
    "spans": spans,
    "span_results": [r.name for r in span_exporter.results],
    "log_results": [r.name for r in logger_exporter.results],
}))
