# Charter registry: `docker build -t charter . && docker run -p 8080:8080 charter`
FROM python:3.11-slim AS build
WORKDIR /src
COPY pyproject.toml README.md ./
COPY contracts contracts
COPY policies policies
COPY gateway gateway
COPY registry registry
# The conformance extra too: `charter conformance` runs from the image against a deployment.
RUN pip wheel --no-cache-dir --wheel-dir /wheels '.[conformance]'

FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    CHARTER_DATABASE_URL=sqlite+aiosqlite:////data/charter.db \
    CHARTER_SIGNING_KEY_FILE=/data/signing-key.pem
COPY --from=build /wheels /wheels
RUN pip install --no-cache-dir --no-index --find-links /wheels 'charter[conformance]' && rm -rf /wheels \
    && useradd --system --uid 10001 --home-dir /data --create-home charter
USER charter
WORKDIR /data
VOLUME ["/data"]
EXPOSE 8080
HEALTHCHECK --interval=30s --timeout=3s --start-period=20s --retries=3 \
    CMD ["python", "-c", "import urllib.request, sys; sys.exit(urllib.request.urlopen('http://127.0.0.1:8080/health', timeout=2).status != 200)"]
CMD ["charter", "serve", "--host", "0.0.0.0", "--port", "8080"]
