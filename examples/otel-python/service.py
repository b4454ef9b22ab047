"""A small HTTP service instrumented with the OpenTelemetry Python SDK, as an application behind the nginx edge
would be: it continues the W3C trace context it receives (traceparent), records a SERVER span for each request
with the caller's identity (the X-User-Id header the edge set after verifying the token, as enduser.id), calls
the next service (a CLIENT span, traceparent injected) or, for the last one, runs an SQL query on the
analytics pool (a CLIENT span with the database semantic conventions), and exports the spans to the audit
collector over OTLP/HTTP, OTLP/gRPC or Zipkin.

usage: service.py --name NAME --exporter otlp-http|otlp-grpc|zipkin --endpoint URL
                  [--downstream URL | --database FILE] [--port N]
  otlp-http: URL is the collector's OTLP/HTTP base (http://127.0.0.1:4318); otlp-grpc: its gRPC address
  (http://127.0.0.1:4317); zipkin: its Zipkin base (http://127.0.0.1:9411).
  Prints {"port": N} once listening. A path containing /fail makes the analytics query fail (HTTP 500 back up
  the chain).

Two endpoints are for the test that drives it, not part of the service: POST /_flush exports what is pending
and GET /_acked lists the spans the collector acknowledged ({"acked": [[trace_id, span_id], ...], "failed": n}).
"""
import argparse
import json
import sqlite3
import threading
import urllib.error
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from opentelemetry.propagate import extract, inject
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult
from opentelemetry.trace import SpanKind, Status, StatusCode

args = argparse.ArgumentParser()
args.add_argument("--name", required=True)
args.add_argument("--exporter", required=True, choices=["otlp-http", "otlp-grpc", "zipkin"])
args.add_argument("--endpoint", required=True)
args.add_argument("--downstream")
args.add_argument("--database")
args.add_argument("--port", type=int, default=0)
options = args.parse_args()

if options.exporter == "otlp-http":
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    exporter = OTLPSpanExporter(endpoint=options.endpoint + "/v1/traces", timeout=5)
elif options.exporter == "otlp-grpc":
    from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter as GRPCSpanExporter
    exporter = GRPCSpanExporter(endpoint=options.endpoint.removeprefix("http://"), insecure=True, timeout=5)
else:
    from opentelemetry.exporter.zipkin.json import ZipkinExporter
    exporter = ZipkinExporter(endpoint=options.endpoint + "/api/v2/spans", timeout=5)


class Acknowledged(SpanExporter):
    """Remembers which spans the collector acknowledged (the exporter returned SUCCESS)."""

    def __init__(self, inner):
        self.inner = inner
        self.lock = threading.Lock()
        self.acked = []
        self.failed = 0

    def export(self, spans):
        result = self.inner.export(spans)
        with self.lock:
            if result == SpanExportResult.SUCCESS:
                self.acked += [[format(s.context.trace_id, "032x"), format(s.context.span_id, "016x")] for s in spans]
            else:
                self.failed += len(spans)
        return result

    def shutdown(self):
        self.inner.shutdown()

    def force_flush(self, timeout_millis=30000):
        return True


recorder = Acknowledged(exporter)
provider = TracerProvider(resource=Resource.create({"service.name": options.name, "service.version": "1.0.0"}))
provider.add_span_processor(BatchSpanProcessor(recorder, schedule_delay_millis=200, max_export_batch_size=256))
tracer = provider.get_tracer("audit.example.service", "1.0.0")

if options.database:
    with sqlite3.connect(options.database) as db:
        db.execute("CREATE TABLE IF NOT EXISTS orders (customer TEXT, amount INTEGER)")
        db.executemany("INSERT INTO orders VALUES (?, ?)", [("alice", 30), ("bob", 12), ("carol", 7)])


def analytics(user, fail):
    """The database-style call: a real query on the analytics pool's SQLite file, as a CLIENT span."""
    table = "missing_table" if fail else "orders"
    statement = f"SELECT customer, SUM(amount) FROM {table} WHERE customer = ? GROUP BY customer"
    with tracer.start_as_current_span("SELECT analytics." + table, kind=SpanKind.CLIENT, attributes={
        "db.system.name": "sqlite", "db.namespace": "analytics", "db.operation.name": "SELECT",
        "db.collection.name": table, "db.query.text": statement,
        "server.address": "analytics-pool.sql.internal", "server.port": 5432,
    }) as span:
        try:
            with sqlite3.connect(options.database) as db:
                rows = db.execute(statement, (user,)).fetchall()
            span.set_attribute("db.response.returned_rows", len(rows))
            return 200
        except sqlite3.Error as error:
            span.set_status(Status(StatusCode.ERROR, str(error)))
            span.set_attribute("error.type", type(error).__name__)
            return 500


def call(path, user):
    """The next service, with the trace context and the caller's identity."""
    url = options.downstream + path
    with tracer.start_as_current_span("GET", kind=SpanKind.CLIENT, attributes={
        "http.request.method": "GET", "url.full": url, "server.address": "127.0.0.1",
    }) as span:
        headers = {"X-User-Id": user} if user else {}
        inject(headers)
        try:
            with urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=10) as response:
                status = response.status
        except urllib.error.HTTPError as error:
            status = error.code
        span.set_attribute("http.response.status_code", status)
        if status >= 500:
            span.set_status(Status(StatusCode.ERROR))
        return status


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_GET(self):
        if self.path == "/_acked":
            with recorder.lock:
                self.answer(200, json.dumps({"acked": recorder.acked, "failed": recorder.failed}).encode())
            return
        user = self.headers.get("X-User-Id", "")
        route = self.path.split("?")[0]
        attributes = {"http.request.method": "GET", "url.path": route, "http.route": route}
        if "?" in self.path:
            attributes["url.query"] = self.path.split("?", 1)[1]
        if user:
            attributes["enduser.id"] = user
        with tracer.start_as_current_span("GET " + route, context=extract(self.headers), kind=SpanKind.SERVER,
                                          attributes=attributes) as span:
            status = call(self.path, user) if options.downstream else analytics(user, "/fail" in route)
            span.set_attribute("http.response.status_code", status)
            if status >= 500:
                span.set_status(Status(StatusCode.ERROR))
        self.answer(status, json.dumps({"service": options.name, "status": status}).encode())

    def do_POST(self):
        if self.path != "/_flush":
            self.answer(404, b"")
            return
        provider.force_flush()
        self.answer(200, b"{}")

    def answer(self, status, body):
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


server = ThreadingHTTPServer(("127.0.0.1", options.port), Handler)
print(json.dumps({"port": server.server_address[1]}), flush=True)
try:
    server.serve_forever()
except KeyboardInterrupt:
    pass
finally:
    provider.shutdown()
