"""Exports spans with the real OpenTelemetry Python SDK and its Zipkin JSON (v2) exporter to a collector, then
prints what it sent as JSON so the Swift test can compare the stored events.

usage: zipkin_export.py BASE_URL   (the collector's Zipkin listener, http://HOST:PORT)
"""
import json
import sys

from recording import Recording

from opentelemetry.exporter.zipkin.json import ZipkinExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.trace import SpanKind, Status, StatusCode

base = sys.argv[1]




exporter = Recording(ZipkinExporter(endpoint=base + "/api/v2/spans"))
provider = TracerProvider(resource=Resource.create({"service.name": "checkout"}))
provider.add_span_processor(SimpleSpanProcessor(exporter))
tracer = provider.get_tracer("audit.zipkin.test")

finished = []
with tracer.start_as_current_span("POST /api/v1/checkout", kind=SpanKind.SERVER, attributes={
    "http.method": "POST", "http.url": "https://shop.example/api/v1/checkout", "http.status_code": 201,
    "user.id": "carol",
}) as parent:
    parent.add_event("payment.authorised")
    with tracer.start_as_current_span("charge card", kind=SpanKind.CLIENT, attributes={"peer.service": "payments"}) as child:
        child.set_status(Status(StatusCode.ERROR, "card declined"))
        finished.append(child)
    finished.append(parent)
provider.shutdown()

print(json.dumps({
    "spans": [{
        "trace_id": format(s.get_span_context().trace_id, "032x"), "span_id": format(s.get_span_context().span_id, "016x"),
        "parent_span_id": format(s.parent.span_id, "016x") if s.parent else None,
        "name": s.name, "kind": s.kind.name, "start": s.start_time, "end": s.end_time,
        "attributes": {k: str(v) for k, v in (s.attributes or {}).items()},
        "events": [{"name": e.name, "time": e.timestamp} for e in s.events],
        "status_message": s.status.description or "",
    } for s in finished],
    "results": [r.name for r in exporter.results],
}))
