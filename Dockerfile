# The gateway's image: `mmo` on the locked dependencies, run as a user without privileges.
# Build: docker build -t mmo-gateway .   Run: docs/deployment.md (and compose.yaml).

# -- build: the locked environment, made once with uv --------------------------------------
FROM python:3.11-slim AS build
COPY --from=ghcr.io/astral-sh/uv:0.5 /uv /usr/local/bin/uv
ENV UV_COMPILE_BYTECODE=1 \
    UV_LINK_MODE=copy \
    UV_PYTHON_DOWNLOADS=never \
    UV_PROJECT_ENVIRONMENT=/app/.venv
WORKDIR /src
# the lock and the workspace's members (their sources are installed, not linked)
COPY pyproject.toml uv.lock ./
COPY core core
COPY host host
COPY plugins plugins
COPY examples examples
RUN uv sync --locked --no-dev --no-editable

# -- run: the environment alone, no build tools, no uv -------------------------------------
FROM python:3.11-slim
RUN groupadd --system --gid 10001 mmo \
 && useradd --system --uid 10001 --gid mmo --home-dir /var/lib/mmo --create-home mmo
COPY --from=build --chown=mmo:mmo /app/.venv /app/.venv
ENV PATH=/app/.venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    MMO_HOST=0.0.0.0 \
    MMO_PORT=8000 \
    MMO_DATA_DIR=/var/lib/mmo
USER mmo
WORKDIR /var/lib/mmo
EXPOSE 8000
CMD ["mmo", "serve"]
