# mailfront's container image: a static binary on distroless, run as
# uid/gid 65532 (distroless's "nonroot"), listening on ports above 1024
# (see README.md, "Container"). Build it from the repository root:
#
#   docker build -t mailfront:$(git describe --tags --always --dirty) \
#     --build-arg VERSION=$(git describe --tags --always --dirty) \
#     --build-arg COMMIT=$(git rev-parse HEAD) \
#     --build-arg BUILD_DATE=$(date -u +%Y-%m-%dT%H:%M:%SZ) .
#
# integration/container_test.go runs this file's build steps and then the
# binary the way the image runs it; deploy/deploy_test.go checks the rest.

FROM docker.io/library/golang:1.26-bookworm AS build
WORKDIR /src
COPY . .
ARG VERSION
ARG COMMIT
ARG BUILD_DATE
# A static binary (no C library in the image), without the builder's paths.
RUN --mount=type=cache,target=/go/pkg/mod \
    --mount=type=cache,target=/root/.cache/go-build \
    CGO_ENABLED=0 go build -trimpath \
      -ldflags "-s -w -X main.Version=${VERSION} -X main.Commit=${COMMIT} -X main.BuildDate=${BUILD_DATE}" \
      -o _image/mailfront ./cmd/mailfront
# The ACME storage directory. distroless has no shell to make it, so it is
# made here and copied with its owner set to the image's user.
RUN mkdir -m 0700 _image/acme

FROM gcr.io/distroless/static-debian12:nonroot
ARG VERSION
ARG COMMIT
ARG BUILD_DATE
LABEL org.opencontainers.image.title="mailfront" \
      org.opencontainers.image.description="TLS front for legacy plaintext IMAP and POP3 servers" \
      org.opencontainers.image.source="https://github.com/mailfront/mailfront" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${COMMIT}" \
      org.opencontainers.image.created="${BUILD_DATE}"
COPY --from=build /src/_image/mailfront /usr/local/bin/mailfront
COPY --from=build --chown=65532:65532 /src/_image/acme /var/lib/mailfront
USER 65532:65532
# Inside the container: IMAPS, POP3S, IMAP and POP3 with STARTTLS, and the
# admin endpoint. Publish the standard ports to them: -p 993:10993 and so
# on; the admin port only on loopback (-p 127.0.0.1:9090:9090).
EXPOSE 10993 10995 10143 10110 9090
# tls.acme.storage's default: the ACME account, keys and certificates.
VOLUME ["/var/lib/mailfront"]
ENTRYPOINT ["/usr/local/bin/mailfront"]
CMD ["run", "--config", "/etc/mailfront/mailfront.yaml"]
