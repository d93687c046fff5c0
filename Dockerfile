# One container that runs the broker: docker build -t strom . && docker run -p 9092:9092 strom
FROM rust:1.95-slim-bookworm AS build
WORKDIR /src
COPY . .
RUN cargo build --release --locked --bin strom

FROM debian:bookworm-slim
COPY --from=build /src/target/release/strom /usr/local/bin/strom
ENV STROM_LISTENERS=PLAINTEXT://0.0.0.0:9092 \
    STROM_ADVERTISED_LISTENERS=PLAINTEXT://localhost:9092 \
    STROM_LOG_DIRS=/var/lib/strom \
    STROM_STROM_HTTP_LISTENER=0.0.0.0:9644
VOLUME /var/lib/strom
EXPOSE 9092 9644
HEALTHCHECK --interval=10s --timeout=5s CMD ["/usr/local/bin/strom", "health", "--timeout-ms", "4000"]
ENTRYPOINT ["/usr/local/bin/strom"]
CMD ["serve"]
