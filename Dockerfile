# syntax=docker/dockerfile:1
# One image with every service's release binary: tracker, sync-worker, auth, devices, web.
# Each container picks its binary and role with its command, e.g. `tracker serve`,
# `tracker migrate`, `sync-worker run`, `web serve` (deploy/compose.yaml, deploy/k8s/base).
#
#   docker build -t kitchen:$(git rev-parse --short HEAD) .
#
# Nothing else is copied into the runtime image, because the binaries carry what they need:
# the migrations (`sqlx::migrate!`), each service's config/base.toml (`include_str!`), and the
# web's askama templates and static/app.css, app.js (compiled in) are all embedded at build
# time. Settings come from APP_* environment variables (README.md, "Configuration").

ARG RUST_VERSION=1.95
ARG DEBIAN_RELEASE=trixie

FROM rust:${RUST_VERSION}-slim-${DEBIAN_RELEASE} AS build
WORKDIR /src
# The whole workspace: cargo resolves every member (loadgen, system-tests) even when it builds
# only five packages. .dockerignore keeps target/, .stack/ and node_modules out.
COPY . .
# The caches keep the registry and the target dir between builds; the binaries are copied out
# because a cache mount is not part of the layer.
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked \
        -p tracker -p sync-worker -p auth -p devices -p web \
 && mkdir -p /out \
 && cp target/release/tracker target/release/sync-worker target/release/auth \
       target/release/devices target/release/web /out/

FROM debian:${DEBIAN_RELEASE}-slim AS runtime
# curl only for health checks in deploy/compose.yaml (Kubernetes probes need nothing).
# The services speak plain HTTP, PostgreSQL and AMQP (no TLS is compiled in), so no CA bundle
# is needed by them; curl brings its own.
RUN apt-get update \
 && apt-get install -y --no-install-recommends curl \
 && rm -rf /var/lib/apt/lists/*
# A fixed uid, so Kubernetes' runAsNonRoot can check it without a name lookup.
RUN groupadd --system --gid 10001 kitchen \
 && useradd --system --uid 10001 --gid kitchen --no-create-home --home-dir /nonexistent \
        --shell /usr/sbin/nologin kitchen
COPY --from=build /out/ /usr/local/bin/
USER 10001:10001
ENV RUST_LOG=info
# Each service listens on its own default port (web 8080, tracker 8081, sync-worker 8082,
# auth 8083, devices 8084); set APP_APPLICATION__HOST=0.0.0.0 in a container.
EXPOSE 8080 8081 8082 8083 8084
# No default command: every container names its binary and role.
CMD ["tracker", "--help"]
