# syntax=docker/dockerfile:1
#
# Rewind's container image: a static binary (CGO_ENABLED=0, -trimpath,
# stripped) on distroless static, running as the non-root user 65532.
#
#   docker build --build-arg VERSION=v0.1.0 -t ghcr.io/rewind-sre/rewind:v0.1.0 .
#
# deploy's TestDockerfile checks these properties and runs this file's
# `go build` line. Pin the base images by digest in your registry mirror
# (e.g. with Renovate); the tags here are the ones that are tested.

# The Go release go.mod requires, or later (GOTOOLCHAIN=local: no download).
ARG GO_VERSION=1.26.8

FROM --platform=$BUILDPLATFORM golang:${GO_VERSION} AS build
ARG TARGETOS=linux
ARG TARGETARCH=amd64
ARG VERSION=dev
WORKDIR /src
ENV CGO_ENABLED=0 GOFLAGS=-mod=readonly GOTOOLCHAIN=local
COPY go.mod go.sum ./
RUN --mount=type=cache,target=/go/pkg/mod go mod download
COPY . .
RUN --mount=type=cache,target=/go/pkg/mod \
    --mount=type=cache,target=/root/.cache/go-build \
    GOOS=${TARGETOS} GOARCH=${TARGETARCH} \
    go build -trimpath -ldflags "-s -w -X github.com/rewind-sre/rewind/cli.Version=${VERSION}" -o /out/rewind ./cmd/rewind
# The runtime's working directory, writable by the non-root user: the
# default journal (rewind.db) and evidence directory of `rewind serve`.
RUN mkdir -p /out/state

FROM gcr.io/distroless/static:nonroot
ARG VERSION=dev
LABEL org.opencontainers.image.title="rewind" \
      org.opencontainers.image.description="Canary analysis and automatic rollback controller" \
      org.opencontainers.image.source="https://github.com/rewind-sre/rewind" \
      org.opencontainers.image.version="${VERSION}"
COPY --from=build /out/rewind /rewind
COPY --from=build --chown=65532:65532 /out/state /var/lib/rewind
WORKDIR /var/lib/rewind
USER 65532:65532
EXPOSE 8080
ENTRYPOINT ["/rewind"]
CMD ["serve", "--policy", "/etc/rewind/policy.yaml"]
