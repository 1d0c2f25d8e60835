# Multi-stage build: compile in the Rust image, run from a slim Debian.
FROM rust:1-bookworm AS build
WORKDIR /src
COPY . .
RUN cargo build --release --bin boxoffice

FROM debian:bookworm-slim
RUN apt-get update && apt-get install -y --no-install-recommends ca-certificates && rm -rf /var/lib/apt/lists/* \
    && useradd --system --uid 10001 boxoffice \
    && mkdir -p /data/uploads && chown boxoffice /data/uploads
COPY --from=build /src/target/release/boxoffice /usr/local/bin/boxoffice
USER boxoffice
ENV HTTP_ADDR=0.0.0.0:8080
EXPOSE 8080
ENTRYPOINT ["boxoffice"]
CMD ["api"]
