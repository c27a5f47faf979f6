# Production image: `deploybot run` as a non-root user (docs/OPERATIONS.md, "The image").
# The build stage installs the package into a virtual environment; the final stage receives only that environment,
# without pip, setuptools or wheel (nothing is compiled: psycopg comes as a binary wheel), on the same slim base.
ARG PYTHON_IMAGE=python:3.11-slim-bookworm

FROM ${PYTHON_IMAGE} AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
RUN python -m venv /opt/deploybot
WORKDIR /src
COPY pyproject.toml README.md ./
COPY bot bot
COPY handlers handlers
COPY models models
COPY migrations migrations
RUN /opt/deploybot/bin/pip install . \
    && /opt/deploybot/bin/pip uninstall --yes pip setuptools wheel

FROM ${PYTHON_IMAGE}
LABEL org.opencontainers.image.title="DeployBot" \
      org.opencontainers.image.description="A Slack bot that runs Amazon ECS deployments from chat" \
      org.opencontainers.image.licenses="Apache-2.0"
# The base image's own pip and setuptools go too: nothing in the running container can install or build.
RUN python -m pip uninstall --yes --no-cache-dir pip setuptools wheel \
    && useradd --system --no-log-init --uid 10001 --home-dir /app --shell /usr/sbin/nologin deploybot \
    && mkdir -p /app /config \
    && chown deploybot /app
COPY --from=build /opt/deploybot /opt/deploybot
ENV PATH=/opt/deploybot/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    PORT=3000 \
    DEPLOYBOT_CATALOG=/config/services.yml
WORKDIR /app
USER 10001
EXPOSE 3000
HEALTHCHECK --interval=30s --timeout=3s --start-period=20s \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen(f\"http://127.0.0.1:{os.environ['PORT']}/healthz\", timeout=2)"]
# `deploybot run` migrates first (an advisory lock makes that safe from every replica), then serves.
# Other commands run the same way: `docker run IMAGE check --offline`, `docker run IMAGE migrate`.
ENTRYPOINT ["deploybot"]
CMD ["run"]
