# Builds both binaries once; the compose file runs the same image as api or workers.
FROM rust:1.95-bookworm AS build
WORKDIR /src
COPY . .
RUN cargo build --release -p api -p workers

FROM debian:bookworm-slim
# fonts-noto-cjk: campaign banners are drawn with Noto Sans CJK KR.
RUN apt-get update && apt-get install -y --no-install-recommends ca-certificates curl fonts-noto-cjk \
    && rm -rf /var/lib/apt/lists/*
COPY --from=build /src/target/release/api /src/target/release/workers /usr/local/bin/
EXPOSE 8080 9091
CMD ["api"]
