# syntax=docker/dockerfile:1.7
# Production image: build with scripts/build.sh (WASM front end + server, release), run as a
# non-root user with the site folder beside the binary. See README, "Production".
#   docker build -t switchboard .

ARG RUST_VERSION=1.95

FROM rust:${RUST_VERSION}-bookworm AS build
# The same pinned tools as scripts/bootstrap.sh: wasm-opt from npm's binaryen (Debian's
# wasm-opt builds bundles that never hydrate), a wasm-bindgen CLI matching Cargo.lock.
RUN apt-get update && apt-get install -y --no-install-recommends npm && rm -rf /var/lib/apt/lists/* \
    && npm install -g --no-audit --no-fund binaryen@132.0.0 \
    && rustup target add wasm32-unknown-unknown
WORKDIR /src
COPY Cargo.lock ./
RUN cargo install wasm-bindgen-cli --version "=$(awk '/^name = "wasm-bindgen"$/{getline; gsub(/[^0-9.]/,""); print; exit}' Cargo.lock)"
COPY . .
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target,sharing=locked \
    ./scripts/build.sh --release \
    && mkdir -p /out && cp target/release/server /out/server && cp -r target/site /out/site

FROM debian:bookworm-slim
RUN apt-get update && apt-get install -y --no-install-recommends ca-certificates && rm -rf /var/lib/apt/lists/* \
    && useradd --system --uid 10001 --home-dir /app switchboard \
    && mkdir -p /app/data && chown switchboard /app/data
COPY --from=build /out/server /app/server
COPY --from=build /out/site /app/site
# Serve on every interface; the object store and database come from the environment
# (compose.yaml), the embedded SQLite default only when nothing is configured.
ENV LEPTOS_SITE_ROOT=/app/site SB_LISTEN=0.0.0.0:3000 SB_DATA_DIR=/app/data SB_LOG_FORMAT=json
USER switchboard
WORKDIR /app
EXPOSE 3000
ENTRYPOINT ["/app/server"]
