# Slipway's images: one Dockerfile, one target per deployable (auth, mailer, web, gateway, and
# slipway — the CLI, which runs the one-shot migrations).
#
#   docker buildx build --target auth -t slipway/auth:$(git rev-parse --short=12 HEAD) .
#
# (docker compose build does this for every service.) The build stage compiles the workspace
# once for all targets, with BuildKit cache mounts for the crate registry and target/, so a
# rebuild after a source change recompiles only what changed. The runtime stage is `scratch`
# with only what the binaries need from Debian (libc, libgcc, CA certificates, a passwd entry):
# non-root, nothing writable needed, every template and asset in the binary.
#
# BINARIES=prebuilt takes the binaries from target/docker-bin/ instead of compiling them: the
# end-to-end test uses it to build images from what the test run already compiled.

ARG RUST_VERSION=1.95
ARG BINARIES=build
# release for images you ship; compose's dev override builds `dev` (faster to compile).
ARG PROFILE=release

FROM rust:${RUST_VERSION}-slim-bookworm AS build
ARG PROFILE
WORKDIR /src
COPY . .
RUN --mount=type=cache,target=/usr/local/cargo/registry,sharing=locked \
    --mount=type=cache,target=/src/target,sharing=locked \
    cargo build --profile "$PROFILE" --locked --bins -p auth -p mailer -p web -p gateway -p slipway-cli \
    && out="target/$([ "$PROFILE" = dev ] && echo debug || echo "$PROFILE")" \
    && mkdir /out && cp "$out/auth" "$out/mailer" "$out/web" "$out/gateway" "$out/slipway" /out/

FROM scratch AS prebuilt
COPY target/docker-bin/ /out/

FROM ${BINARIES} AS binaries

# The runtime's root filesystem, assembled from Debian's own files: the shared libraries the
# binaries link (found with ldd, so any architecture works: the loader, libc, libm, libgcc_s),
# the CA certificates, a passwd entry for uid 10001, and an empty /tmp. Nothing else: no shell,
# no package manager.
FROM debian:bookworm-slim AS rootfs
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates \
    && rm -rf /var/lib/apt/lists/*
COPY --from=binaries /out/ /out/
RUN set -e; mkdir -p /rootfs/etc/ssl/certs /rootfs/tmp /rootfs/nonexistent; chmod 1777 /rootfs/tmp; \
    for lib in $(ldd /out/* | awk '$2 == "=>" && $3 ~ /^\// { print $3 } $1 ~ /^\/.*[^:]$/ { print $1 }' | sort -u); do \
        mkdir -p "/rootfs$(dirname "$lib")"; cp -L "$lib" "/rootfs$lib"; \
    done; \
    cp /etc/ssl/certs/ca-certificates.crt /rootfs/etc/ssl/certs/; \
    printf 'root:x:0:0:root:/root:/sbin/nologin\nslipway:x:10001:10001::/nonexistent:/sbin/nologin\n' > /rootfs/etc/passwd; \
    printf 'root:x:0:\nslipway:x:10001:\n' > /rootfs/etc/group; \
    printf 'hosts: files dns\n' > /rootfs/etc/nsswitch.conf

FROM scratch AS runtime
LABEL org.slipway.image="true"
COPY --from=rootfs /rootfs/ /
# Unset SLIPWAY_ENV means prod (fails closed); compose's dev override sets dev. Inside a
# container the service listens on every interface; the admin listener stays on loopback.
ENV SLIPWAY_HOST=0.0.0.0 PATH=/usr/local/bin
USER 10001:10001
WORKDIR /nonexistent
STOPSIGNAL SIGTERM

FROM runtime AS auth
COPY --from=binaries /out/auth /usr/local/bin/auth
EXPOSE 8081
HEALTHCHECK --interval=5s --timeout=3s --start-period=60s --retries=3 CMD ["auth", "healthcheck"]
ENTRYPOINT ["auth"]

FROM runtime AS mailer
COPY --from=binaries /out/mailer /usr/local/bin/mailer
EXPOSE 8083
HEALTHCHECK --interval=5s --timeout=3s --start-period=60s --retries=3 CMD ["mailer", "healthcheck"]
ENTRYPOINT ["mailer"]

FROM runtime AS web
COPY --from=binaries /out/web /usr/local/bin/web
EXPOSE 8082
HEALTHCHECK --interval=5s --timeout=3s --start-period=60s --retries=3 CMD ["web", "healthcheck"]
ENTRYPOINT ["web"]

FROM runtime AS gateway
COPY --from=binaries /out/gateway /usr/local/bin/gateway
# The health check and `gateway routes` ask this process on a socket of the container's own,
# so a successor sharing the gateway's ports (`slipway deploy`) never answers for it.
ENV SLIPWAY_GATEWAY_ADMIN_SOCKET=/tmp/gateway-admin.sock
EXPOSE 8080 8443
HEALTHCHECK --interval=5s --timeout=3s --start-period=60s --retries=3 CMD ["gateway", "healthcheck"]
ENTRYPOINT ["gateway"]

FROM runtime AS slipway
COPY --from=binaries /out/slipway /usr/local/bin/slipway
ENTRYPOINT ["slipway"]
CMD ["migrate", "up"]
