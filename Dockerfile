# syntax=docker/dockerfile:1
#
# Flagstream: one image, both binaries (flagstream-api is the default command; run
# flagstream-consumer by overriding the command). Build with BuildKit:
#   docker build -t flagstream:0.1.0 --build-arg VERSION=0.1.0 --build-arg REVISION=$(git rev-parse HEAD) .
# The build fetches crates from crates.io and nothing else.

# ---------------------------------------------------------------------------- builder
FROM rust:1.95-bookworm AS builder

# rust-toolchain.toml also asks for clippy and rustfmt, which the image's minimal profile
# lacks: naming the image's own toolchain overrides the file, so rustup never downloads a
# component during the build, and RUSTUP_AUTO_INSTALL=0 turns any mismatch into an error
# instead of a download.
ENV RUSTUP_TOOLCHAIN=${RUST_VERSION} \
    RUSTUP_AUTO_INSTALL=0 \
    CARGO_INCREMENTAL=0 \
    CARGO_TERM_COLOR=never

WORKDIR /src
# Every workspace member must be present for cargo to load the workspace, even the ones
# that are not built (.dockerignore keeps everything else, notably target/ and .env*, out).
COPY Cargo.toml Cargo.lock rust-toolchain.toml ./
# .cargo/config.toml makes sqlx's query macros read the checked statements in .sqlx/
# instead of connecting to a database.
COPY .cargo .cargo
COPY .sqlx .sqlx
COPY rules rules
COPY consumer consumer
COPY api api
COPY benches benches
COPY migrations migrations
COPY service service
COPY scripts/build-release scripts/build-release

# The registry and target caches survive between builds, so a source change recompiles
# only the workspace crates; build-release copies the binaries out of the cache mount.
RUN --mount=type=cache,id=flagstream-cargo-registry,target=/usr/local/cargo/registry,sharing=locked \
    --mount=type=cache,id=flagstream-cargo-git,target=/usr/local/cargo/git,sharing=locked \
    --mount=type=cache,id=flagstream-target,target=/src/target,sharing=locked \
    scripts/build-release /out

# ---------------------------------------------------------------------------- runtime
# distroless/cc has glibc, libgcc, libstdc++, OpenSSL 3 and CA certificates: what the
# binaries link against (zlib is linked statically by build-release), and no shell or
# package manager. For reproducible deployments pin the digest as well, e.g.
#   FROM gcr.io/distroless/cc-debian12:nonroot@sha256:<digest>
# (look it up with `crane digest gcr.io/distroless/cc-debian12:nonroot`) and let a
# dependency bot bump it.
FROM gcr.io/distroless/cc-debian12:nonroot

ARG VERSION=0.1.0
ARG REVISION=unknown
ARG CREATED=unknown
LABEL org.opencontainers.image.title="flagstream" \
      org.opencontainers.image.description="Security monitor for LLM traffic: Kafka consumer (flagstream-consumer) and REST API (flagstream-api)" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.created="${CREATED}" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.source="https://example.invalid/flagstream" \
      org.opencontainers.image.base.name="gcr.io/distroless/cc-debian12:nonroot"

COPY --from=builder /out/flagstream-api /out/flagstream-consumer /usr/local/bin/

# The binaries' own defaults listen on loopback, which is unreachable from outside a
# container; deployments may still override these.
ENV API_LISTEN=0.0.0.0:8000 \
    API_METRICS_ADDR=0.0.0.0:9092 \
    METRICS_ADDR=0.0.0.0:9091

# Numeric, so Kubernetes' runAsNonRoot can verify it without a passwd lookup.
USER 65532:65532

# 8000 API, 9091 consumer metrics and health, 9092 API metrics and health.
EXPOSE 8000 9091 9092

# The API's liveness; the consumer's deployments override it with its :9091/health.
HEALTHCHECK --interval=15s --timeout=5s --start-period=20s --retries=3 \
    CMD ["flagstream-api", "healthcheck", "http://127.0.0.1:8000/health"]

CMD ["flagstream-api"]
