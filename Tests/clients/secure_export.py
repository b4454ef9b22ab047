"""Real clients against the collector's TLS listeners, for the Swift tests. Prints one JSON object.

usage:
  secure_export.py spans http|grpc ENDPOINT CA [--cert C --key K] [--token T] [--count N]
      Exports N spans with the OpenTelemetry SDK's OTLP exporter (protobuf over HTTPS, or gRPC over TLS)
      and prints {"results": [...], "trace_ids": [...]}.
  secure_export.py keepalive HOST PORT CA [--cert C --key K]
      Opens one HTTPS connection, posts an empty OTLP request, prints {"status": S, "fingerprint": F}; then
      waits for a line on stdin and posts again over the same connection, printing the same again.
  secure_export.py syslog HOST PORT CA [--cert C --key K] LINE...
      Sends each LINE as an octet-counted syslog frame (RFC 5425) over TLS, then closes.
"""
import argparse
import hashlib
import http.client
import json
import socket
import ssl
import sys


def context(ca, cert, key):
    ctx = ssl.create_default_context(cafile=ca)
    if cert:
        ctx.load_cert_chain(cert, key)
    return ctx


def spans(args):
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor

    from recording import Recording

    headers = {"authorization": "Bearer " + args.token} if args.token else None
    if args.protocol == "grpc":
        from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
        import grpc

        read = lambda p: open(p, "rb").read() if p else None
        credentials = grpc.ssl_channel_credentials(
            root_certificates=read(args.ca), private_key=read(args.key), certificate_chain=read(args.cert))
        exporter = OTLPSpanExporter(endpoint=args.endpoint, insecure=False, credentials=credentials,
                                    headers=headers, timeout=10)
    else:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        exporter = OTLPSpanExporter(endpoint=args.endpoint + "/v1/traces", certificate_file=args.ca,
                                    client_certificate_file=args.cert, client_key_file=args.key,
                                    headers=headers, timeout=10)
    recording = Recording(exporter)
    provider = TracerProvider(resource=Resource.create({"service.name": "secure-client"}))
    provider.add_span_processor(SimpleSpanProcessor(recording))
    tracer = provider.get_tracer("audit.secure")
    trace_ids = []
    for i in range(args.count):
        with tracer.start_as_current_span("op %d" % i) as span:
            trace_ids.append(format(span.get_span_context().trace_id, "032x"))
    provider.shutdown()
    print(json.dumps({"results": [r.name for r in recording.results], "trace_ids": trace_ids}))


def post(conn):
    conn.request("POST", "/v1/traces", body=b"", headers={"Content-Type": "application/x-protobuf"})
    response = conn.getresponse()
    response.read()
    fingerprint = hashlib.sha256(conn.sock.getpeercert(binary_form=True)).hexdigest()
    return {"status": response.status, "fingerprint": fingerprint}


def keepalive(args):
    conn = http.client.HTTPSConnection(args.host, args.port, context=context(args.ca, args.cert, args.key), timeout=10)
    print(json.dumps(post(conn)), flush=True)
    sys.stdin.readline()
    print(json.dumps(post(conn)), flush=True)
    conn.close()


def syslog(args):
    ctx = context(args.ca, args.cert, args.key)
    with socket.create_connection((args.host, args.port), timeout=10) as raw:
        with ctx.wrap_socket(raw, server_hostname=args.host) as tls:
            for line in args.lines:
                frame = line.encode()
                tls.sendall(b"%d " % len(frame) + frame)
    print(json.dumps({"sent": len(args.lines)}))


parser = argparse.ArgumentParser()
sub = parser.add_subparsers(dest="mode", required=True)
p = sub.add_parser("spans")
p.add_argument("protocol", choices=["http", "grpc"])
p.add_argument("endpoint")
p.add_argument("ca")
p.add_argument("--cert")
p.add_argument("--key")
p.add_argument("--token")
p.add_argument("--count", type=int, default=3)
p = sub.add_parser("keepalive")
p.add_argument("host")
p.add_argument("port", type=int)
p.add_argument("ca")
p.add_argument("--cert")
p.add_argument("--key")
p = sub.add_parser("syslog")
p.add_argument("host")
p.add_argument("port", type=int)
p.add_argument("ca")
p.add_argument("--cert")
p.add_argument("--key")
p.add_argument("lines", nargs="+")
args = parser.parse_args()
{"spans": spans, "keepalive": keepalive, "syslog": syslog}[args.mode](args)
