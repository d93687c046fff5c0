# Strom in one small image: the release binary on an empty base, plus the few shared
# libraries it links (glibc's libc/libm/loader and libgcc_s, found with ldd and taken
# from the build image, so they always match the glibc it was linked against).
#
#   docker build -t strom .
#   docker run -d --name strom -p 9092:9092 -v strom-data:/var/lib/strom strom
#
# Plain Dockerfile syntax (no BuildKit-only features): docker build, BuildKit and
# podman/buildah all build it. BUILD_IMAGE is any Debian-based image with a Rust
# toolchain (cargo on PATH), gcc and libc6-dev; scripts/container_test.py passes one it
# makes locally. rust-toolchain.toml is not sent (.dockerignore): the build image's
# toolchain builds, so pin the version here.
ARG BUILD_IMAGE=rust:1.95.0-slim-bookworm

FROM ${BUILD_IMAGE} AS build
WORKDIR /src
COPY . .
# The binary is copied out of target/ so that target/ may be a cache mount
# and stripped of its symbol table there (the image stays under 30 MB with the schema
# registry's parsers; target/release keeps its symbols for local backtraces).
# (podman build -v …:/src/target, as the container test does).
# The strom crate itself is built as one codegen unit: its stripped binary is 23 MB
# instead of 27 (measured 2026-12-05), for about two more minutes of build; the
# dependencies keep cargo's default and build in parallel.
RUN cargo build --release --locked --bin strom --config 'profile.release.package.strom.codegen-units=1' \
 && mkdir -p /rootfs/usr/local/bin /rootfs/etc/strom /rootfs/tmp /empty \
 && cp target/release/strom /rootfs/usr/local/bin/strom \
 && strip /rootfs/usr/local/bin/strom \
 && for lib in $(ldd target/release/strom | awk '$2 == "=>" && $3 ~ /^\// { print $3 } $1 ~ /^\// { print $1 }'); do \
        cp -L --parents "$lib" /rootfs; \
    done \
 && chmod 1777 /rootfs/tmp \
 && printf 'root:x:0:0:root:/root:/sbin/nologin\nnonroot:x:65532:65532:nonroot:/var/lib/strom:/sbin/nologin\n' \
        > /rootfs/etc/passwd \
 && printf 'root:x:0:\nnonroot:x:65532:\n' > /rootfs/etc/group \
 && printf 'hosts: files dns\n' > /rootfs/etc/nsswitch.conf \
 && printf '%s\n' \
        '# Defaults of the Strom image. KAFKA_* and STROM_* variables and flags override them' \
        '# (README: Docker). A wildcard listener advertises localhost.' \
        'listeners=PLAINTEXT://0.0.0.0:9092' \
        'log.dirs=/var/lib/strom' \
        'strom.http.listener=0.0.0.0:9644' \
        'strom.schema.registry.listener=0.0.0.0:8081' \
        > /rootfs/etc/strom/server.properties \
 && /rootfs/usr/local/bin/strom --version

FROM scratch
COPY --from=build /rootfs/ /
# The data directory belongs to the broker's user; a new named volume mounted here
# takes this ownership.
COPY --from=build --chown=65532:65532 /empty/ /var/lib/strom/
ENV STROM_CONFIG=/etc/strom/server.properties
USER 65532:65532
WORKDIR /var/lib/strom
VOLUME /var/lib/strom
# 9092: Kafka clients. 9644: HTTP /metrics, /livez, /readyz. 8081: the schema registry
# (Confluent's REST API, issue 18).
EXPOSE 9092 9644 8081
# strom health: ApiVersions + Metadata against STROM_BOOTSTRAP (default localhost:9092);
# set STROM_BOOTSTRAP in the container when the client listener is elsewhere.
HEALTHCHECK --interval=10s --timeout=5s --start-period=30s --retries=3 \
    CMD ["/usr/local/bin/strom", "health", "--timeout-ms", "4000"]
# SIGTERM (docker stop) finishes in-flight requests, closes every log cleanly (a
# clean-shutdown marker per partition: the next start scans no tails) and exits 0.
STOPSIGNAL SIGTERM
ENTRYPOINT ["/usr/local/bin/strom"]
CMD ["serve"]
