FROM rust:1-bookworm AS build
WORKDIR /src
COPY . .
RUN cargo build --release --bin clinic

FROM debian:bookworm-slim
RUN apt-get update && apt-get install -y --no-install-recommends ca-certificates && rm -rf /var/lib/apt/lists/*
COPY --from=build /src/target/release/clinic /usr/local/bin/clinic
USER nobody
ENTRYPOINT ["clinic"]
CMD ["serve"]
