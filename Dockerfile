# syntax=docker/dockerfile:1
# wa-gateway image: a wheel build stage and a slim, non-root runtime.
#   docker build -t wa-gateway .
#   docker run -p 4010:4010 -v wa-sessions:/app/sessions -e API_KEY=change-me wa-gateway

ARG PYTHON_IMAGE=python:3.11-slim

# --- builder: the project and every dependency as wheels --------------------------
FROM ${PYTHON_IMAGE} AS builder
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /src
COPY pyproject.toml README.md ./
COPY gateway ./gateway
# gateway/env.example (the configuration reference `wa-gateway --help` prints) links to config/.
COPY config ./config
RUN pip wheel --wheel-dir /wheels .

# --- runtime ------------------------------------------------------------------
FROM ${PYTHON_IMAGE} AS runtime
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    HOST=0.0.0.0 \
    PORT=4010 \
    DATA_DIR=/app/sessions

# neonize imports python-magic, which needs libmagic at run time (the media MIME detection uses it too);
# ffmpeg converts media WhatsApp cannot take as it is (voice notes, video, stickers) and makes thumbnails.
RUN apt-get update \
    && apt-get install -y --no-install-recommends libmagic1 ffmpeg \
    && rm -rf /var/lib/apt/lists/*

# A fixed numeric uid/gid, so orchestrators can check runAsNonRoot and volumes can be chowned to it.
RUN groupadd --system --gid 10001 gateway \
    && useradd --system --uid 10001 --gid gateway --home-dir /app --no-create-home --shell /usr/sbin/nologin gateway

# The wheels are bind-mounted from the builder, so they never become a layer of this image.
RUN --mount=type=bind,from=builder,source=/wheels,target=/wheels \
    pip install --no-index --find-links=/wheels wa-gateway

WORKDIR /app
RUN mkdir -p /app/sessions && chown -R 10001:10001 /app
USER 10001:10001

# gateway.db (registry, contacts, webhook outbox), the generated api_key and one session file per device.
VOLUME /app/sessions
EXPOSE 4010

# slim has no curl: ask /health with the standard library (a non-2xx or no answer exits 1).
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/health' % os.environ.get('PORT', '4010'), timeout=4)"]

# SIGTERM: stop intake, finish in-flight requests, flush, exit 0 within 10 s.
STOPSIGNAL SIGTERM
CMD ["wa-gateway"]
