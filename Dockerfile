# syntax=docker/dockerfile:1
# One image for every OpenSQT process: the four services and the paper exchange.
#   opensqt-monitor | opensqt-strategy | opensqt-executor | opensqt-risk | opensqt paper-exchange
# Build: docker build -t opensqt:dev .   (compose.yaml and deploy/k8s use the name "opensqt")
ARG PYTHON_IMAGE=python:3.11-slim-bookworm

FROM ${PYTHON_IMAGE} AS builder
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1 \
    PYTHONDONTWRITEBYTECODE=1
# The venv lives at the same path in both stages, so its scripts' shebangs stay valid.
RUN python -m venv /opt/opensqt
WORKDIR /src
COPY requirements/ requirements/
RUN /opt/opensqt/bin/pip install --quiet -r requirements/tools.txt
# requirements/lock.txt pins every version; used as constraints it installs exactly the locked
# versions of the runtime dependencies declared in pyproject.toml, and leaves out the
# development tools (pytest, mypy, ruff, the test servers, the compose binary).
COPY pyproject.toml README.md ./
COPY src/ src/
COPY services/ services/
RUN /opt/opensqt/bin/pip install --quiet -c requirements/lock.txt --no-build-isolation . \
 && /opt/opensqt/bin/pip check \
 && /opt/opensqt/bin/python -m compileall -q /opt/opensqt/lib

FROM ${PYTHON_IMAGE} AS runtime
LABEL org.opencontainers.image.title="opensqt" \
      org.opencontainers.image.description="OpenSQT services and paper exchange" \
      org.opencontainers.image.licenses="Apache-2.0"
RUN groupadd --system --gid 10001 opensqt \
 && useradd --system --uid 10001 --gid 10001 --no-create-home --home-dir /nonexistent \
        --shell /usr/sbin/nologin opensqt
COPY --from=builder /opt/opensqt /opt/opensqt
# Read-only root filesystem: bytecode is compiled at build time and every cache goes to /tmp,
# which Kubernetes and compose mount as an emptyDir / tmpfs.
ENV PATH=/opt/opensqt/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    HOME=/tmp \
    MPLCONFIGDIR=/tmp/matplotlib \
    GRPC_VERBOSITY=ERROR
WORKDIR /tmp
USER 10001:10001
# No HEALTHCHECK: Kubernetes probes the plaintext health port (grpc probes), compose runs its own.
CMD ["opensqt", "--help"]
