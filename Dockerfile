# fleet's image: the CLI, the Celery workers and beat, and the ARM emulator (one image, many
# commands; see docker-compose.yml).
FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1
WORKDIR /app
COPY pyproject.toml README.md ./
COPY fleet fleet
COPY workers workers
COPY policies policies
RUN pip install ".[postgres]" "flower>=2.0" \
 && useradd --create-home --uid 10001 fleet
USER fleet
ENV FLEET_STATE_DIR=/home/fleet/state
ENTRYPOINT []
CMD ["fleet", "--help"]
