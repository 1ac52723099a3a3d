# routectl container images (docs/deploying.md). Two targets:
#   runtime (the default, last stage): `routectl serve` and only what it imports; non-root;
#            the table baked in at /etc/routectl/routing_table.json, or mounted (ROUTECTL_TABLE)
#   cli:     the full CLI for pipelines: compile, check, diff, explain, simulate, test, db apply
#
#   docker build -t routectl:runtime .              (or podman build; `make container-test`)
#   docker build --target cli -t routectl:cli .
#
# The base is the public Python image; `make container-test` builds an equivalent one from
# Debian packages under the same name on machines that reach no image registry.
FROM docker.io/library/python:3.11-slim-bookworm AS base
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

# ---- build: one virtual environment per target, so the runtime's holds nothing of the CLI's
FROM base AS build
# binutils only strips the wheels' shared objects (uvloop's alone loses 12 MB of symbols); it
# stays in this stage, and any bookworm version does that job, so it is not pinned
# hadolint ignore=DL3008
RUN apt-get update \
 && apt-get install -y --no-install-recommends binutils \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY pyproject.toml README.md ./
COPY src ./src
# The runtime is `pip install '.[redis]'`: the Redis client for `serve --redis-url` (limits shared
# by every replica). `--build-arg RUNTIME_EXTRAS=redis,logs` adds psycopg for
# `serve --log-database-url` (request_logs; about 12 MB more); the default image holds nothing of
# the compiler's and no database driver. pip and setuptools are not needed at run time;
# bytecode compiled here and valid whatever the files' times (the root filesystem is read-only)
ARG RUNTIME_EXTRAS=redis
RUN python3 -m venv /opt/routectl \
 && /opt/routectl/bin/pip install --no-compile ".[${RUNTIME_EXTRAS}]" \
 && /opt/routectl/bin/pip uninstall -y -q pip setuptools \
 && python3 -m venv /opt/routectl-cli \
 && /opt/routectl-cli/bin/pip install --no-compile '.[cli]' \
 && /opt/routectl-cli/bin/pip uninstall -y -q pip setuptools \
 && find /opt/routectl /opt/routectl-cli -name '*.so' -exec strip --strip-unneeded {} + \
 && find /opt/routectl /opt/routectl-cli -type f \
      \( -name '*.pyx' -o -name '*.pxd' -o -name '*.pyi' -o -name '*.c' -o -name '*.h' \) -delete \
 && python3 -m compileall -q -j 0 --invalidation-mode unchecked-hash /opt/routectl /opt/routectl-cli

# ---- cli: `docker run --rm -v "$PWD:/work" -w /work routectl:cli check`
FROM base AS cli
COPY --from=build /opt/routectl-cli /opt/routectl-cli
ENV PATH=/opt/routectl-cli/bin:$PATH
USER 10001:10001
ENTRYPOINT ["routectl"]
CMD ["--help"]

# ---- runtime: `docker run -p 8080:8080 routectl:runtime`, or mount a table and set ROUTECTL_TABLE
FROM base AS runtime
COPY --from=build /opt/routectl /opt/routectl
COPY generated/routing_table.json /etc/routectl/routing_table.json
# listens on every interface of the container; SIGTERM drains (docs/deploying.md)
ENV PATH=/opt/routectl/bin:$PATH \
    ROUTECTL_TABLE=/etc/routectl/routing_table.json \
    ROUTECTL_HOST=0.0.0.0 \
    ROUTECTL_PORT=8080
# a numeric user, so Kubernetes' runAsNonRoot can verify it without a passwd entry
USER 10001:10001
EXPOSE 8080
HEALTHCHECK --interval=15s --timeout=3s --start-period=10s --retries=3 \
  CMD ["python3", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:' + os.environ['ROUTECTL_PORT'] + '/healthz', timeout=2)"]
STOPSIGNAL SIGTERM
ENTRYPOINT ["routectl", "serve"]
