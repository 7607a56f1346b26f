# The Baton server. Point it at Postgres with BATON_DATABASE_URL; without it
# the server starts the embedded Postgres under /data (fine for trying it out).
FROM python:3.12-slim

RUN useradd --create-home --uid 10001 baton && mkdir /data && chown baton /data
WORKDIR /app
COPY pyproject.toml README.md ./
COPY service ./service
COPY clients ./clients
RUN pip install --no-cache-dir .

USER baton
ENV BATON_LISTEN=0.0.0.0:50051 \
    BATON_DATA_DIR=/data
EXPOSE 50051
HEALTHCHECK --interval=10s --timeout=3s --start-period=20s \
  CMD ["python", "-c", "import grpc, sys; from grpc_health.v1 import health_pb2 as h, health_pb2_grpc as g; r = g.HealthStub(grpc.insecure_channel('localhost:50051')).Check(h.HealthCheckRequest(), timeout=2); sys.exit(r.status != h.HealthCheckResponse.SERVING)"]
ENTRYPOINT ["baton"]
CMD ["serve"]
