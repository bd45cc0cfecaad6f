# syntax=docker/dockerfile:1
# Chibify image: the bot (default command) and, with `chibify worker`, a generation worker for a broker.
# Default: CUDA runtime base for GPU hosts.
# CPU-only hosts:  docker build --build-arg BASE_IMAGE=python:3.11-slim-bookworm --build-arg TORCH_SPEC="torch==2.13.0 --index-url https://download.pytorch.org/whl/cpu" .
# (Not built on the development machines: they have no Docker engine.)
ARG BASE_IMAGE=nvidia/cuda:12.6.3-cudnn-runtime-ubuntu24.04

# ---- build stage: a virtual environment with every dependency --------------------------------------
FROM ${BASE_IMAGE} AS build
ARG TORCH_SPEC="torch==2.13.0"
ENV DEBIAN_FRONTEND=noninteractive PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
# The CUDA base (Ubuntu 24.04) brings Python 3.12 from apt; python:3.11-slim already has Python.
RUN command -v python3 >/dev/null && python3 -m venv --help >/dev/null 2>&1 \
    || (apt-get update && apt-get install -y --no-install-recommends python3 python3-venv \
        && rm -rf /var/lib/apt/lists/*)
RUN python3 -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH
WORKDIR /src
# Dependencies in their own layer: only the lock file is copied first, so code edits don't reinstall them.
# requirements.lock pins every runtime dependency (docker/lock.py writes it); torch comes first, as TORCH_SPEC.
COPY pyproject.toml README.md requirements.lock ./
RUN pip install ${TORCH_SPEC} && pip install --no-deps mediapipe==0.10.14 \
    && pip install --no-deps -r requirements.lock
COPY bot ./bot
COPY generation ./generation
COPY storage ./storage
COPY migrations ./migrations
COPY alembic.ini ./
RUN pip install --no-deps .

# ---- runtime stage: the venv and nothing else, as a non-root user -------------------------------------
FROM ${BASE_IMAGE} AS runtime
ENV DEBIAN_FRONTEND=noninteractive PYTHONUNBUFFERED=1 PATH=/opt/venv/bin:$PATH \
    CHIBIFY_DATA_DIR=/data
RUN apt-get update && apt-get install -y --no-install-recommends tini \
    && (command -v python3 >/dev/null || apt-get install -y --no-install-recommends python3) \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --create-home --uid 10001 chibify && mkdir -p /data && chown chibify /data
COPY --from=build /opt/venv /opt/venv
COPY docker/entrypoint.sh /usr/local/bin/chibify-entrypoint
USER chibify
WORKDIR /home/chibify
VOLUME ["/data"]
# tini forwards SIGTERM to the bot, which drains its queue before exiting (a worker finishes its batch).
ENTRYPOINT ["tini", "--", "chibify-entrypoint"]
CMD ["python3", "-m", "bot"]
