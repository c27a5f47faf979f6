# Production image: slim Python, non-root, `deploybot run`.
FROM python:3.11-slim AS build
WORKDIR /src
COPY pyproject.toml README.md ./
COPY bot bot
COPY handlers handlers
COPY models models
COPY migrations migrations
RUN pip install --no-cache-dir --prefix=/install .

FROM python:3.11-slim
ENV PYTHONUNBUFFERED=1 PYTHONDONTWRITEBYTECODE=1 PORT=3000 DEPLOYBOT_CATALOG=/config/services.yml
COPY --from=build /install /usr/local
RUN useradd --system --uid 10001 --home-dir /app deploybot && mkdir -p /app /config && chown deploybot /app
WORKDIR /app
USER deploybot
EXPOSE 3000
HEALTHCHECK --interval=30s --timeout=3s CMD python -c "import os,urllib.request;urllib.request.urlopen(f'http://127.0.0.1:{os.environ[\"PORT\"]}/healthz')"
# Migrations are safe to run from every replica (PostgreSQL advisory lock), so run them first.
CMD ["sh", "-c", "deploybot migrate && exec deploybot run"]
