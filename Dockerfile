# The cxpulse worker / CLI image (used by docker-compose.yml).
FROM python:3.11-slim
WORKDIR /app
COPY pyproject.toml README.md ./
COPY stream ./stream
RUN pip install --no-cache-dir . && useradd --create-home cxpulse
COPY targets.yaml ./
USER cxpulse
ENV CXPULSE_DATADIR=/home/cxpulse/data
ENTRYPOINT ["cxpulse"]
CMD ["worker"]
