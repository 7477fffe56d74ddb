# syntax=docker/dockerfile:1
# The ecs-operator image: `docker build -t ecs-operator:0.1.0 .` (the tag the Helm chart defaults to).

FROM rust:1.95-bookworm AS build
WORKDIR /src
COPY . .
# Cache mounts keep the registry and target/ between builds; the binary is copied out of the cache.
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked --package ecs-operator --bin ecs-operator \
    && cp target/release/ecs-operator /ecs-operator

# glibc and libgcc only, no shell; runs as the distroless nonroot user.
FROM gcr.io/distroless/cc-debian12:nonroot
COPY --from=build /ecs-operator /ecs-operator
USER 65532:65532
ENTRYPOINT ["/ecs-operator"]
CMD ["run"]
