# syntax=docker/dockerfile:1
# fleetwatch: one image for every process. Pick the process by command:
#   server     fleetwatch-server --bind 0.0.0.0:8000   (the default; gunicorn)
#   worker     fleetwatch-worker [--queues ingest,alerts,notifications,maintenance]
#   scheduler  fleetwatch-scheduler                      (run exactly one)
#   agent      fleetwatch-agent                          (host /proc at /host/proc; state in /var/lib/fleetwatch-agent)
#   migrate    fleetwatch-migrate
#   admin      fleetwatch-manage createsuperuser
ARG PYTHON_VERSION=3.11

# ---- build: compile wheels and install them into a virtualenv ----------------
FROM python:${PYTHON_VERSION}-slim-bookworm AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
# Compilers only for dependencies without a wheel for this platform; they stay in this stage.
RUN apt-get update \
    && apt-get install -y --no-install-recommends build-essential \
    && rm -rf /var/lib/apt/lists/*
RUN python -m venv /opt/fleetwatch
WORKDIR /src
COPY . .
RUN /opt/fleetwatch/bin/pip install ".[agent,server]" \
    && /opt/fleetwatch/bin/pip uninstall -y pip setuptools wheel
# Admin and API browser assets, collected once at build time.
RUN DJANGO_SETTINGS_MODULE=collector_server.settings FLEETWATCH_ALLOW_INSECURE_KEY=true ALLOWED_HOSTS=localhost \
    STATIC_ROOT=/opt/fleetwatch/static /opt/fleetwatch/bin/python -m django collectstatic --noinput -v 0

# ---- runtime: the virtualenv on a clean slim base, run as a non-root user -----
FROM python:${PYTHON_VERSION}-slim-bookworm AS runtime
ARG FLEETWATCH_UID=10001
RUN groupadd --system --gid ${FLEETWATCH_UID} fleetwatch \
    && useradd --system --uid ${FLEETWATCH_UID} --gid fleetwatch --home-dir /var/lib/fleetwatch \
       --shell /usr/sbin/nologin fleetwatch \
    && install -d -o fleetwatch -g fleetwatch -m 0750 /var/lib/fleetwatch /var/lib/fleetwatch-agent
COPY --from=build /opt/fleetwatch /opt/fleetwatch
ENV PATH=/opt/fleetwatch/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    DJANGO_SETTINGS_MODULE=collector_server.settings \
    STATIC_ROOT=/opt/fleetwatch/static
USER fleetwatch:fleetwatch
WORKDIR /var/lib/fleetwatch
EXPOSE 8000
# Probes the server's health endpoint; other processes override or disable it (docker-compose.yml).
HEALTHCHECK --interval=15s --timeout=5s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import urllib.request as u; u.urlopen(u.Request('http://127.0.0.1:8000/api/v1/monitoring/health?scope=server', headers={'Host': 'localhost'}), timeout=4)"]
CMD ["fleetwatch-server", "--bind", "0.0.0.0:8000"]
