# syntax=docker/dockerfile:1

# Portero image: a static binary on distroless, running as a non-root user.
#
#   make docker            # docker build --build-arg VERSION=… -t portero:VERSION .
#   docker run --rm -p 8080:8080 \
#     -v "$PWD/portero.yaml:/etc/portero/portero.yaml:ro" \
#     -e SECRET_KEY -e DATABASE_URL -e REDIS_URL portero:VERSION
#
# The default /etc/portero/portero.yaml is configs/portero.example.yaml (every
# secret from the environment); mount your own in its place. Set
# ops_listen: ":9090" in it to reach /-/metrics from outside the container.

ARG GO_VERSION=1.26

FROM golang:${GO_VERSION} AS build
WORKDIR /src
# Modules first, so editing code does not invalidate the download layer.
COPY go.mod go.sum ./
RUN --mount=type=cache,target=/go/pkg/mod go mod download
COPY . .
ARG VERSION=dev
ARG COMMIT=unknown
# CGO_ENABLED=0: a static binary (SQLite is pure Go) that runs on distroless
# static. -buildvcs=false: .git is not in the build context.
RUN --mount=type=cache,target=/go/pkg/mod \
    --mount=type=cache,target=/root/.cache/go-build \
    CGO_ENABLED=0 GOFLAGS=-buildvcs=false go build -trimpath \
      -ldflags "-s -w -X main.version=${VERSION} -X main.commit=${COMMIT}" \
      -o /out/portero ./cmd/portero
# Config files, and a writable home for the SQLite default (storage.url
# sqlite://./data/portero.db is relative to the working directory).
RUN mkdir -p /out/etc/portero /out/var/lib/portero/data \
 && cp configs/*.yaml /out/etc/portero/ \
 && if [ ! -f /out/etc/portero/portero.yaml ] && [ -f configs/portero.example.yaml ]; then \
      cp configs/portero.example.yaml /out/etc/portero/portero.yaml; \
    fi

# distroless static: CA certificates and tzdata, no shell, no package manager;
# the :nonroot tag's user is 65532.
FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/portero /portero
COPY --from=build /out/etc/portero/ /etc/portero/
COPY --from=build --chown=65532:65532 /out/var/lib/portero/ /var/lib/portero/
WORKDIR /var/lib/portero
USER 65532:65532
EXPOSE 8080 9090
ENTRYPOINT ["/portero"]
CMD ["serve", "--config", "/etc/portero/portero.yaml"]
