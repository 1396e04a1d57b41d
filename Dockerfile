# syntax=docker/dockerfile:1
# membrane's container image: one static executable on distroless/static.
#
# The build stage runs hack/static.sh: OpenSSL (cut down to what the operator's
# TLS peers and signatures use), libcurl (HTTP and HTTPS on that OpenSSL only)
# and libarchive (tar and gzip only) built from Debian's source packages, cJSON
# from its source package, and the static archives Debian ships for libyaml and
# libwebsockets, all linked into build-static/membrane with -static.
# The runtime stage is distroless/static: CA certificates, /etc/passwd, no
# shell, no package manager and no shared libraries. Runs as 65532:65532, which
# the Deployment's securityContext also requires.
#
#   docker build -t ghcr.io/kfm/membrane:dev .
#   docker run --rm ghcr.io/kfm/membrane:dev version
#
# Without a container engine, hack/image.sh assembles the same image (the
# binary, the CA bundle, the same entrypoint, user and labels) as an OCI layout.
#
# Both bases are pinned by digest. Where the digests were found (public
# Dockerfiles, as no registry is reachable from where this was written):
#   debian:bookworm@sha256:8a8cd02c...: the FROM of several public Dockerfiles,
#     also written as debian:12@ and debian@ with the same digest (nine files);
#   gcr.io/distroless/static-debian12@sha256:9c346e4b...: the final stage of ten
#     public Dockerfiles (one writes it static-debian12:latest@sha256:...).
# Bump both together: `docker buildx imagetools inspect <image>:<tag>`.
ARG BUILD_IMAGE=debian:bookworm@sha256:8a8cd02c5912770b4980228a54d4aff9e4f986f1eb2525d2d371dec5232cefcc
ARG RUNTIME_IMAGE=gcr.io/distroless/static-debian12@sha256:9c346e4be81b5ca7ff31a0d89eaeade58b0f95cfd3baed1f36083ddb47ca3160

FROM ${BUILD_IMAGE} AS build
# hack/static.sh fetches its sources with apt in a private state directory of
# its own (deb-src entries, signatures checked with debian-archive-keyring)
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
      build-essential cmake ninja-build pkg-config ca-certificates debian-archive-keyring \
      libssl-dev libyaml-dev libwebsockets-dev libcap-dev zlib1g-dev uthash-dev libcmocka-dev \
      binutils \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
# CMakeLists.txt also configures the test, e2e and bench targets, so their
# sources come along (only the membrane target is built).
COPY CMakeLists.txt ./
COPY controller/ controller/
COPY test/ test/
COPY e2e/ e2e/
COPY bench/ bench/
COPY hack/static.sh hack/static.sh
RUN MEMBRANE_STATIC_BUILD=/src/build-static bash hack/static.sh \
 && ./build-static/membrane version

FROM ${RUNTIME_IMAGE}
COPY --from=build /src/build-static/membrane /membrane
LABEL org.opencontainers.image.title="membrane" \
      org.opencontainers.image.description="KFM governance operator: governed API releases, policy bundles, dataset promotions" \
      org.opencontainers.image.version="0.1.0" \
      org.opencontainers.image.source="https://github.com/kfm/membrane"
USER 65532:65532
# metrics (/metrics) and health (/healthz, /readyz)
EXPOSE 8080 8081
ENTRYPOINT ["/membrane"]
CMD ["run"]
