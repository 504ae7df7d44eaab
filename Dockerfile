# shardcat's image: built from the sources in one stage, run from a slim Debian in the next.
# docker-compose.yml mounts config/ and rules/ at /etc/shardcat; `docker build -t shardcat .` alone works too.
FROM rust:1-bookworm AS build
WORKDIR /src
COPY Cargo.toml Cargo.lock ./
COPY src src
COPY benches benches
RUN cargo build --release --locked --bin shardcat

FROM debian:bookworm-slim
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates curl \
 && rm -rf /var/lib/apt/lists/*
COPY --from=build /src/target/release/shardcat /usr/local/bin/shardcat
COPY config /etc/shardcat/config
COPY rules /etc/shardcat/rules
EXPOSE 8066 9066 9067
HEALTHCHECK --interval=5s --timeout=3s --retries=12 CMD curl -fsS http://127.0.0.1:9067/health || exit 1
ENTRYPOINT ["shardcat"]
CMD ["serve", "--config", "/etc/shardcat/config", "--rules", "/etc/shardcat/rules", "--log-format", "json"]
