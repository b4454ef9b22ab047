"""Steady traffic for `make soak-crash`, until SIGTERM; then prints one JSON summary line.

usage:
  soak_export.py spans http|grpc ENDPOINT ACKED_FILE [--rate N]
      The OpenTelemetry SDK (BatchSpanProcessor, OTLP/HTTP protobuf or OTLP/gRPC exporter, their own retries)
      makes about N spans a second. Each span of a batch the collector acknowledged is appended to ACKED_FILE
      as TRACE_ID/SPAN_ID (hex) as soon as the exporter returns SUCCESS. On SIGTERM the processor is flushed.
      Summary: {"acknowledged": A, "failed": F} (spans in batches the exporter gave up on).
  soak_export.py syslog HOST PORT [--rate N]
      nginx access lines (JSON log format, RFC 3164 as nginx writes them) over syslog TCP, octet-counted,
      reconnecting after each error. Syslog has no acknowledgement. Summary: {"sent": S, "reconnects": R}.
"""
import argparse
import json
import random
import signal
import socket
import threading
import time

stop = threading.Event()
signal.signal(signal.SIGTERM, lambda *_: stop.set())


class AckLog:
    """Wraps an exporter: the spans of every acknowledged batch go to a file, the moment SUCCESS comes back."""

    def __init__(self, inner, path):
        from opentelemetry.sdk.trace.export import SpanExportResult

        self.inner = inner
        self.success = SpanExportResult.SUCCESS
        self.out = open(path, "a")
        self.acknowledged = 0
        self.failed = 0

    def export(self, batch):
        result = self.inner.export(batch)
        if result == self.success:
            for s in batch:
                self.out.write("%032x/%016x\n" % (s.context.trace_id, s.context.span_id))
            self.out.flush()
            self.acknowledged += len(batch)
        else:
            self.failed += len(batch)
        return result

    def shutdown(self):
        self.inner.shutdown()
        self.out.close()

    def force_flush(self, timeout_millis=30000):
        return True


def spans(args):
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor
    from opentelemetry.trace import SpanKind

    if args.protocol == "grpc":
        from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter

        exporter = OTLPSpanExporter(endpoint=args.endpoint.removeprefix("http://"), insecure=True, timeout=10)
    else:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        exporter = OTLPSpanExporter(endpoint=args.endpoint + "/v1/traces", timeout=10)
    log = AckLog(exporter, args.acked)
    provider = TracerProvider(resource=Resource.create({"service.name": "soak-" + args.protocol}))
    provider.add_span_processor(
        BatchSpanProcessor(log, max_queue_size=100_000, max_export_batch_size=200, schedule_delay_millis=100))
    tracer = provider.get_tracer("audit.soak")
    users = ["u-%04d" % i for i in range(200)]
    n = 0
    started = time.monotonic()
    while not stop.is_set():
        route = random.choice(["/api/v1/orders", "/api/v1/search", "/api/v1/cart", "/api/v1/users/me"])
        with tracer.start_as_current_span("GET " + route, kind=SpanKind.SERVER, attributes={
            "http.request.method": "GET", "url.path": route, "http.response.status_code": 200,
            "enduser.id": random.choice(users), "soak.n": n,
        }):
            with tracer.start_as_current_span("SELECT", kind=SpanKind.CLIENT, attributes={"db.system.name": "postgresql"}):
                pass
        n += 2
        # Pace to about --rate spans a second.
        ahead = n / args.rate - (time.monotonic() - started)
        if ahead > 0:
            stop.wait(ahead)
    provider.shutdown()  # exports what is queued, with the exporter's retries
    print(json.dumps({"acknowledged": log.acknowledged, "failed": log.failed}), flush=True)


def syslog(args):
    sent = 0
    reconnects = 0
    conn = None
    started = time.monotonic()
    while not stop.is_set():
        if conn is None:
            try:
                conn = socket.create_connection((args.host, args.port), timeout=5)
            except OSError:
                reconnects += 1
                stop.wait(0.1)
                continue
        line = json.dumps({
            "time_iso8601": time.strftime("%Y-%m-%dT%H:%M:%S+00:00", time.gmtime()), "request_method": "GET",
            "request_uri": "/api/v1/orders?page=%d" % (sent % 50), "status": "200",
            "remote_user": "u-%04d" % (sent % 200), "request_id": "soak-%d" % sent,
        }, separators=(",", ":"))
        frame = ("<190>%s edge-1 nginx: %s" % (time.strftime("%b %e %H:%M:%S", time.gmtime()), line)).encode()
        try:
            conn.sendall(b"%d " % len(frame) + frame)
            sent += 1
        except OSError:
            conn.close()
            conn = None
            reconnects += 1
            continue
        ahead = sent / args.rate - (time.monotonic() - started)
        if ahead > 0:
            stop.wait(ahead)
    if conn is not None:
        conn.close()
    print(json.dumps({"sent": sent, "reconnects": reconnects}), flush=True)


parser = argparse.ArgumentParser()
sub = parser.add_subparsers(dest="mode", required=True)
p = sub.add_parser("spans")
p.add_argument("protocol", choices=["http", "grpc"])
p.add_argument("endpoint")
p.add_argument("acked")
p.add_argument("--rate", type=float, default=400)
p = sub.add_parser("syslog")
p.add_argument("host")
p.add_argument("port", type=int)
p.add_argument("--rate", type=float, default=200)
args = parser.parse_args()
{"spans": spans, "syslog": syslog}[args.mode](args)
