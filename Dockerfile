# The Baton server.
#
#   docker run -e BATON_DATABASE_URL=postgresql://... \
#              -e BATON_TLS_CERT=/certs/tls.crt -e BATON_TLS_KEY=/certs/tls.key -v ...:/certs \
#              -e BATON_TOKENS_FILE=/secrets/tokens -p 50051:50051 baton
#
# Plaintext is refused on a non-loopback address unless asked for
# (BATON_INSECURE=true, e.g. inside a private network, as compose.yaml does).
# Without BATON_DATABASE_URL the server starts the embedded Postgres under /data.
FROM python:3.12-slim

RUN useradd --create-home --uid 10001 baton && mkdir /data && chown baton /data
WORKDIR /app
COPY pyproject.toml README.md ./
COPY service ./service
COPY clients ./clients
RUN pip install --no-cache-dir .

USER baton
ENV BATON_LISTEN=0.0.0.0:50051 BATON_DATA_DIR=/data
EXPOSE 50051
# With TLS, set BATON_TLS_CA to a CA that signed the server's certificate (for localhost).
HEALTHCHECK --interval=10s --timeout=5s --start-period=20s CMD ["baton", "health", "--target", "localhost:50051"]
ENTRYPOINT ["baton"]
CMD ["serve"]
