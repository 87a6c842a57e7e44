# Gatewayz in a container: `docker compose up` (compose.yaml) runs it in production shape with
# PostgreSQL and Redis; alone, `docker run -p 8000:8000 -v gatewayz:/data gatewayz` serves on
# SQLite in the /data volume.

# ---- build: the package and its dependencies in a virtual environment ----
FROM python:3.11-slim AS build
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1
WORKDIR /build
RUN python -m venv /opt/gatewayz
COPY pyproject.toml constraints.txt README.md ./
COPY src ./src
RUN /opt/gatewayz/bin/pip install -c constraints.txt .

# ---- run: the virtual environment only, as an unprivileged user ----
FROM python:3.11-slim
RUN useradd --system --uid 10001 --home-dir /data --shell /usr/sbin/nologin gatewayz \
    && mkdir -p /data && chown gatewayz:gatewayz /data
COPY --from=build /opt/gatewayz /opt/gatewayz
# Every setting is a GATEWAYZ_* variable (README, Configuration); these are the container's
# defaults: listen on every interface, two workers, state in the /data volume.
ENV PATH=/opt/gatewayz/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    GATEWAYZ_DATA_DIR=/data \
    GATEWAYZ_HOST=0.0.0.0 \
    GATEWAYZ_PORT=8000 \
    GATEWAYZ_WORKERS=2 \
    GATEWAYZ_LOG_FORMAT=json
USER gatewayz
WORKDIR /data
VOLUME ["/data"]
EXPOSE 8000
HEALTHCHECK --interval=15s --timeout=5s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:' + os.environ.get('GATEWAYZ_PORT', '8000') + '/health', timeout=4)"]
ENTRYPOINT ["gatewayz"]
CMD ["serve"]
