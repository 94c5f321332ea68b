# syntax=docker/dockerfile:1
# The rightsizer operator image.
#
#   docker build -t ghcr.io/rightsizer/rightsizer:0.1.0 .
#
# builder: builds this project's wheel and installs it, with its dependencies (binary
#          wheels only: nothing is compiled), into a pip-less venv at /opt/rightsizer.
# final:   the same slim base without pip/setuptools/wheel, the venv, a non-root user.
# Both stages use the same base so the venv's interpreter path is identical.
# Pinned by exact version tag; pin the digest too (`python:3.11.13-slim-bookworm@sha256:…`)
# where your registry policy asks for it.
ARG PYTHON_IMAGE=python:3.11.13-slim-bookworm

FROM ${PYTHON_IMAGE} AS builder
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_ROOT_USER_ACTION=ignore \
    PYTHONDONTWRITEBYTECODE=1
WORKDIR /src
# Only what the wheel is built from (see .dockerignore): metadata, readme, the package.
COPY pyproject.toml README.md ./
COPY operator/ operator/
RUN pip wheel --no-deps --wheel-dir /wheels . \
 && python -m venv --without-pip /opt/rightsizer \
 && pip --python /opt/rightsizer/bin/python install --only-binary=:all: --compile /wheels/rightsizer-*.whl \
 && /opt/rightsizer/bin/python -c "import rightsizer.handlers.main"

FROM ${PYTHON_IMAGE}
LABEL org.opencontainers.image.title="rightsizer" \
      org.opencontainers.image.description="Kubernetes operator (Kopf) that right-sizes workload requests and limits from real usage" \
      org.opencontainers.image.licenses="Apache-2.0"
# No build or install tools at run time: no pip, and no package manager (apt's and
# dpkg's programs and apt's state go; dpkg's database stays, image scanners read it);
# a numeric system user (65532, as in the Deployment's securityContext) with no home and
# no shell.
RUN PIP_ROOT_USER_ACTION=ignore python -m pip uninstall --yes --no-cache-dir pip setuptools wheel \
 && rm -rf /root/.cache \
 && rm -rf /usr/bin/apt /usr/bin/apt-* /usr/bin/dpkg /usr/bin/dpkg-* /usr/sbin/dpkg-* \
           /usr/lib/apt /usr/lib/dpkg /etc/apt /var/lib/apt /var/cache/apt /var/cache/debconf \
 && groupadd --system --gid 65532 rightsizer \
 && useradd --system --uid 65532 --gid 65532 --no-create-home --home-dir /nonexistent \
            --shell /usr/sbin/nologin rightsizer
COPY --from=builder /opt/rightsizer /opt/rightsizer
# The root filesystem is read-only in the cluster: no bytecode writes; HOME and TMPDIR
# point at the /tmp emptyDir.
ENV PATH=/opt/rightsizer/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    HOME=/tmp \
    TMPDIR=/tmp
USER 65532:65532
WORKDIR /tmp
EXPOSE 8080 8081
ENTRYPOINT ["kopf", "run", "-m", "rightsizer.handlers.main", "--standalone", "--all-namespaces", "--liveness=http://0.0.0.0:8081/healthz", "--log-format=json"]
