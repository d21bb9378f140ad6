# syntax=docker/dockerfile:1.7
#
# One image for the whole platform: the four services, the samsa CLI and a
# tiny HTTP health probe for docker-compose (the runtime image has no shell).
# Kubernetes and docker-compose pick the binary with the container command:
#
#   samsa-control  samsa-receiver  samsa-transformer  samsa-deliverer  samsa
#
# Build:  docker build -t samsa:dev .
# Multi-arch: docker buildx build --platform linux/amd64,linux/arm64 -t REPO:TAG .

ARG GO_VERSION=1.26.8
ARG BASE_IMAGE=gcr.io/distroless/static-debian12:nonroot

# Cross-compile on the build host's platform: the binaries are pure Go
# (CGO_ENABLED=0), so no emulation is needed for other architectures.
FROM --platform=$BUILDPLATFORM golang:${GO_VERSION} AS build
WORKDIR /src
ENV CGO_ENABLED=0 GOFLAGS=-trimpath GOTOOLCHAIN=local

# Dependencies first, in their own layer and cache, so a source change does
# not download modules again. The build uses the workspace (go.work), as
# `make build` does.
COPY go.mod go.sum go.work go.work.sum ./
RUN --mount=type=cache,target=/go/pkg/mod \
    go mod download

COPY . .
ARG TARGETOS TARGETARCH
RUN --mount=type=cache,target=/go/pkg/mod \
    --mount=type=cache,target=/root/.cache/go-build \
    set -eu; \
    export GOOS="$TARGETOS" GOARCH="$TARGETARCH"; \
    mkdir -p /out; \
    for s in control receiver transformer deliverer; do \
      go build -ldflags='-s -w' -o "/out/samsa-$s" "./services/$s"; \
    done; \
    go build -ldflags='-s -w' -o /out/samsa ./cmd/samsa; \
    go build -ldflags='-s -w' -o /out/samsa-healthcheck ./deploy/healthcheck

# distroless/static: CA certificates and time zone data (maintenance windows
# use IANA zones), no shell, no package manager. The nonroot variant runs as
# uid/gid 65532.
FROM ${BASE_IMAGE}
ARG VERSION=dev
LABEL org.opencontainers.image.title="samsa" \
      org.opencontainers.image.description="Kafka-native event ETL: receiver, transformer, deliverer, control and the samsa CLI" \
      org.opencontainers.image.source="https://github.com/samsa-dev/samsa" \
      org.opencontainers.image.version="${VERSION}"
COPY --from=build /out/ /usr/local/bin/
USER 65532:65532
# control REST and gRPC, receiver HTTP and gRPC, transformer and deliverer admin.
EXPOSE 8080 9090 8081 9091 8082 8083
CMD ["samsa", "--help"]
