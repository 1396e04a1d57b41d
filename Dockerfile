# syntax=docker/dockerfile:1
# membrane's container image: a Debian bookworm stage builds the operator with
# CMake and Ninja from Debian's -dev packages; the runtime stage is
# debian:bookworm-slim with only the shared libraries the binary links (found
# with ldd in the build stage, so the list follows the code) and CA
# certificates. Runs as 65532:65532, which the Deployment's securityContext
# also requires.
#
#   docker build -t ghcr.io/kfm/membrane:dev .
#   docker run --rm ghcr.io/kfm/membrane:dev version
#
# TODO(release): pin both base images by digest (FROM debian:bookworm@sha256:...,
# FROM debian:bookworm-slim@sha256:...) from `docker buildx imagetools inspect`
# at release time. They are pinned by tag here because the digests could not be
# verified when this file was written; a tag moves, a digest does not.
ARG BUILD_IMAGE=debian:bookworm
ARG RUNTIME_IMAGE=debian:bookworm-slim

FROM ${BUILD_IMAGE} AS build
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
      build-essential cmake ninja-build pkg-config ca-certificates \
      libcurl4-openssl-dev libcjson-dev libyaml-dev libssl-dev libwebsockets-dev \
      libarchive-dev uthash-dev libcmocka-dev \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
# CMakeLists.txt also configures the test targets, so test/ comes along (it is
# not built: only the membrane target is).
COPY CMakeLists.txt ./
COPY controller/ controller/
COPY test/ test/
RUN cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=Release \
 && ninja -C build membrane \
 && strip build/membrane \
 && ./build/membrane version
# The Debian packages that own the libraries the binary links, minus libc6
# (already in the runtime image).
RUN ldd build/membrane | awk '/=> \// {print $3}' | while read -r lib; do \
      dpkg -S "$lib" 2>/dev/null || dpkg -S "/usr$lib" 2>/dev/null || dpkg -S "$(realpath "$lib")"; \
    done | cut -d: -f1 | sort -u | grep -vx 'libc6' > /runtime-packages \
 && test -s /runtime-packages \
 && cat /runtime-packages

FROM ${RUNTIME_IMAGE}
COPY --from=build /runtime-packages /tmp/runtime-packages
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
      ca-certificates $(cat /tmp/runtime-packages) \
 && rm -rf /var/lib/apt/lists/* /tmp/runtime-packages
COPY --from=build /src/build/membrane /membrane
LABEL org.opencontainers.image.title="membrane" \
      org.opencontainers.image.description="KFM governance operator: governed API releases, policy bundles, dataset promotions" \
      org.opencontainers.image.source="https://github.com/kfm/membrane"
USER 65532:65532
# metrics (/metrics) and health (/healthz, /readyz)
EXPOSE 8080 8081
ENTRYPOINT ["/membrane"]
CMD ["run"]
