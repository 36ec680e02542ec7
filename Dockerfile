# syntax=docker/dockerfile:1

# Build: a static binary (pure Go, no cgo: SQLite is compiled to Go).
FROM golang:1.26-bookworm AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
# perpetua --version: perpetua <VERSION> (<COMMIT>, <BUILD_DATE>, <go version>).
# VERSION defaults to the VERSION file's.
ARG VERSION=
ARG COMMIT=unknown
ARG BUILD_DATE=
RUN date="${BUILD_DATE:-$(date -u +%Y-%m-%dT%H:%M:%SZ)}" version="${VERSION:-$(cat VERSION)}" \
 && CGO_ENABLED=0 go build -trimpath \
      -ldflags "-s -w -X github.com/perpetuaflow/api/app.Version=${version} -X github.com/perpetuaflow/api/app.Commit=${COMMIT} -X github.com/perpetuaflow/api/app.BuildDate=${date}" \
      -o /out/perpetua . \
 && mkdir -p /out/data

# Run: distroless, non-root, nothing but the binary (IANA zones are embedded).
FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/perpetua /usr/local/bin/perpetua
COPY --from=build --chown=nonroot:nonroot /out/data /data
ENV DATA_DIR=/data \
    DATABASE_URL=sqlite:/data/perpetua.db \
    PORT=8000 \
    OPS_PORT=9090
USER nonroot:nonroot
VOLUME ["/data"]
EXPOSE 8000 9090
HEALTHCHECK --interval=10s --timeout=5s --start-period=20s --retries=3 \
  CMD ["/usr/local/bin/perpetua", "healthcheck"]
ENTRYPOINT ["/usr/local/bin/perpetua"]
CMD ["serve", "--role=all"]
