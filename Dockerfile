# ---- build stage -----------------------------------------------------------
FROM rust:1.95-slim-bookworm AS builder

# aws-lc-sys (via jsonwebtoken/aws-lc-rs) compiles C code: it needs a C compiler.
RUN apt-get update \
    && apt-get install -y --no-install-recommends gcc libc6-dev pkg-config \
    && rm -rf /var/lib/apt/lists/*

WORKDIR /app

# 1. Dependencies only: build them against empty lib/main so this layer is
#    cached until Cargo.toml or Cargo.lock change.
COPY Cargo.toml Cargo.lock ./
# The benches stay stubs: Cargo.toml names them, and the image never builds them.
RUN mkdir src benches \
    && echo 'fn main() {}' > src/main.rs \
    && echo 'fn main() {}' > benches/ceilings.rs \
    && echo 'fn main() {}' > benches/redis_connections.rs \
    && touch src/lib.rs \
    && cargo build --release --locked \
    && rm -rf src

# 2. The real crate. migrations/ is embedded by sqlx::migrate!() and .sqlx/
#    holds the offline query data, so both must be present at compile time.
COPY .sqlx ./.sqlx
COPY migrations ./migrations
COPY src ./src
# Make sure cargo rebuilds the crate itself and does not reuse the dummy build
# (COPY keeps the files' original mtimes, which may be older than it).
RUN touch src/lib.rs src/main.rs \
    && SQLX_OFFLINE=true cargo build --release --locked \
    && cp target/release/rs256-auth /usr/local/bin/rs256-auth

# ---- runtime stage ---------------------------------------------------------
FROM debian:bookworm-slim AS runtime

# ca-certificates for outgoing TLS; curl only for the compose healthcheck.
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates curl \
    && rm -rf /var/lib/apt/lists/* \
    && groupadd --system --gid 10001 app \
    && useradd --system --uid 10001 --gid app --home-dir /app --no-create-home \
        --shell /usr/sbin/nologin app \
    && mkdir /app && chown app:app /app

COPY --from=builder /usr/local/bin/rs256-auth /usr/local/bin/rs256-auth

WORKDIR /app
USER 10001:10001

ENV HOST=0.0.0.0 PORT=8000
EXPOSE 8000

ENTRYPOINT ["/usr/local/bin/rs256-auth"]
