# syntax=docker/dockerfile:1
# custval container image: the release binary on Debian slim, run as a non-root user.
#
#   docker build -t custval .
#   docker run --rm -v "$PWD/jobs:/jobs:ro" custval validate /jobs/cdnow.toml
#
# Job files go in /jobs (a volume: mount them read-only, or from a Kubernetes ConfigMap); the
# working directory is /work, so relative `source.uri` / `output.uri` in a job file resolve
# under it (mount the data there, or use object-store URIs). Credentials come from the
# environment (`-e AWS_ACCESS_KEY_ID ...`, or the pod's service account), never from the image.
# See docs/scheduling.md, "Docker image".

ARG RUST_VERSION=1

# ---- builder ---------------------------------------------------------------------------------
FROM rust:${RUST_VERSION}-slim-bookworm AS builder
WORKDIR /src

# Dependencies first, built against stub sources: this layer is cached until Cargo.toml or
# Cargo.lock change, so editing src/ recompiles custval only, not polars and the rest.
# (Cargo.toml declares the benches, so their files must exist for cargo to read the manifest.)
COPY Cargo.toml Cargo.lock ./
RUN mkdir -p src benches \
 && echo 'fn main() {}' > src/main.rs \
 && touch src/lib.rs \
 && echo 'fn main() {}' > benches/models.rs \
 && echo 'fn main() {}' > benches/backfill.rs \
 && cargo build --release --locked \
 && rm -rf src benches

# The real sources. COPY keeps the files' modification times, which may be older than the stub
# build: touch them so that cargo rebuilds the custval crate.
COPY src ./src
COPY benches ./benches
RUN find src benches -name '*.rs' -exec touch {} + \
 && cargo build --release --locked \
 && install -m 0755 target/release/custval /usr/local/bin/custval \
 && custval --version

# ---- runtime ---------------------------------------------------------------------------------
FROM debian:bookworm-slim AS runtime

# ca-certificates: TLS to S3, GCS, Azure and HTTPS sources (rustls reads the system roots).
# A fixed numeric uid/gid, so that Kubernetes' `runAsNonRoot` can check the user.
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates \
 && rm -rf /var/lib/apt/lists/* \
 && groupadd --system --gid 10001 custval \
 && useradd --system --uid 10001 --gid custval --home-dir /work --no-create-home \
      --shell /usr/sbin/nologin custval \
 && mkdir -p /work /jobs \
 && chown custval:custval /work

COPY --from=builder /usr/local/bin/custval /usr/local/bin/custval

USER 10001:10001
WORKDIR /work
VOLUME ["/jobs"]
ENTRYPOINT ["custval"]
CMD ["--help"]
