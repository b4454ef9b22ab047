# Points any OpenTelemetry SDK (the standard environment variables of the OpenTelemetry specification) at the
# audit collector. The end-to-end test's services (../otel-python/service.py) pass the same endpoints in code.
export OTEL_SERVICE_NAME=orders
export OTEL_TRACES_EXPORTER=otlp
export OTEL_LOGS_EXPORTER=otlp
export OTEL_METRICS_EXPORTER=none                  # the collector takes traces and logs, not metrics
export OTEL_PROPAGATORS=tracecontext,baggage       # W3C traceparent, as the nginx edge forwards it
export OTEL_TRACES_SAMPLER=parentbased_always_on   # an audit trail does not sample
# OTLP/HTTP (protobuf or JSON) on 4318 ...
export OTEL_EXPORTER_OTLP_PROTOCOL=http/protobuf
export OTEL_EXPORTER_OTLP_ENDPOINT=http://127.0.0.1:4318
# ... or OTLP/gRPC on 4317:
#   export OTEL_EXPORTER_OTLP_PROTOCOL=grpc OTEL_EXPORTER_OTLP_ENDPOINT=http://127.0.0.1:4317
# Zipkin v2 JSON on 9411 (OTEL_TRACES_EXPORTER=zipkin):
#   export OTEL_EXPORTER_ZIPKIN_ENDPOINT=http://127.0.0.1:9411/api/v2/spans
# The user: put the verified caller in enduser.id (or user.id) on the server span, as service.py does with the
# X-User-Id header the edge set; the collector indexes it (identity.user_attributes).
