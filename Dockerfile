# Production image of Shanhai: the API (default command) and, with another command, the Celery worker.
# Build: docker build -t shanhai .   Deployment: docker-compose.yml (PostGIS, Redis, api, worker).

FROM python:3.11-slim AS build
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1
RUN python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH
WORKDIR /src
COPY . .
# Every runtime dependency (shapely, pyproj, psycopg[binary], argon2-cffi) ships manylinux wheels,
# so the slim image needs no compiler.
RUN pip install .

FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PATH=/opt/venv/bin:$PATH \
    SHANHAI_DATA_DIR=/app/var
RUN groupadd --system --gid 10001 shanhai \
    && useradd --system --uid 10001 --gid shanhai --home-dir /app --no-create-home --shell /usr/sbin/nologin shanhai
WORKDIR /app
COPY --from=build /opt/venv /opt/venv
# Demo data for `shanhai seed` / `shanhai run` (the installed package does not contain samples/).
COPY samples/ ./samples/
# data_dir: the SQLite file and generated key of the embedded mode; unused when PostgreSQL and
# SHANHAI_SECRET_KEY are configured, as in docker-compose.yml.
RUN mkdir -p /app/var && chown shanhai:shanhai /app/var
USER shanhai:shanhai
EXPOSE 8000
CMD ["shanhai", "serve", "--host", "0.0.0.0", "--port", "8000"]
