# syntax=docker/dockerfile:1
#
# The provisioner's image: a static Go binary on distroless, running as the "nonroot" user.
#   docker build --build-arg VERSION=$(git describe --tags --always) -t REGISTRY/provisioner:TAG .
# Multi-platform builds (docker buildx build --platform linux/amd64,linux/arm64) cross-compile in the
# builder's own platform instead of emulating the target.
#
# Base images are pinned by tag. Pin them by digest too (name:tag@sha256:...) where your registry
# policy asks for it; digests could not be resolved where this file was written.

FROM --platform=$BUILDPLATFORM golang:1.26.8 AS build
WORKDIR /src
# Modules first, in their own layer, so that a source change does not download them again.
COPY go.mod go.sum ./
RUN --mount=type=cache,target=/go/pkg/mod go mod download
COPY . .
ARG TARGETOS
ARG TARGETARCH
# Printed by `provisioner version` and sent in the Kubernetes client's User-Agent; main.version
# defaults to "dev".
ARG VERSION=dev
# CGO off: a static binary with no libc, as distroless/static requires. -trimpath keeps build paths
# out of the binary (reproducible builds); -s -w drop the symbol table and DWARF data.
RUN --mount=type=cache,target=/go/pkg/mod \
    --mount=type=cache,target=/root/.cache/go-build \
    CGO_ENABLED=0 GOOS=$TARGETOS GOARCH=$TARGETARCH \
    go build -trimpath -ldflags "-s -w -X main.version=${VERSION}" -o /out/provisioner ./cmd/provisioner

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/provisioner /provisioner
# Numeric, so that the kubelet can verify runAsNonRoot without reading /etc/passwd.
USER 65532:65532
EXPOSE 8080
ENTRYPOINT ["/provisioner"]
CMD ["run"]
