# syntax=docker/dockerfile:1
# linkmeter-agent image: the DaemonSet in manifests/agent/daemonset.yaml runs it.
#   docker build -t ghcr.io/linkmeter/linkmeter-agent:0.1.0 .
# linkmeter-aggregator image (the Deployment in manifests/aggregator/deployment.yaml):
#   docker build --target aggregator -t ghcr.io/linkmeter/linkmeter-aggregator:0.1.0 .
# The agent's stage stays the last one, so a build without --target is the agent's;
# BuildKit builds only the stages the chosen target needs.
# Build context: the repository root (.dockerignore keeps target/ and .git out).

# ---- build ---------------------------------------------------------------------------
# Same Debian release (bookworm, glibc 2.36) as the runtime image, so the binary links
# against a glibc that is there at run time.
FROM rust:1.95-bookworm AS build
WORKDIR /src
# The whole workspace: cargo needs every member's manifest to load it, and Cargo.lock
# pins what --locked builds.
COPY . .
# BuildKit cache mounts keep the registry and target/ between builds; target/ is a
# cache mount, so the binary is copied out of it within the same RUN.
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked -p linkmeter-agent \
    && install -D -m 0755 target/release/linkmeter-agent /out/linkmeter-agent

# ---- aggregator ----------------------------------------------------------------------
# Its own build stage, so the agent's build above stays what it was (and is not slowed
# by the aggregator's kube-runtime dependencies). Same cache mounts: the two share the
# workspace's dependency builds.
FROM rust:1.95-bookworm AS build-aggregator
WORKDIR /src
COPY . .
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked -p linkmeter-aggregator --bin linkmeter-aggregator \
    && install -D -m 0755 target/release/linkmeter-aggregator /out/linkmeter-aggregator

# distroless "cc" like the agent (glibc; rustls needs no libssl), as distroless's
# nonroot user (65532): the aggregator needs no privilege at all, and the Deployment's
# restricted security context (runAsNonRoot) checks the numeric user.
FROM gcr.io/distroless/cc-debian12 AS aggregator
COPY --from=build-aggregator /out/linkmeter-aggregator /usr/local/bin/linkmeter-aggregator
# 9478: /metrics, /healthz, /readyz.
EXPOSE 9478/tcp
USER 65532:65532
ENTRYPOINT ["/usr/local/bin/linkmeter-aggregator"]
CMD ["run"]

# ---- runtime -------------------------------------------------------------------------
# distroless "cc": glibc, libgcc, libssl and CA certificates, no shell or package
# manager. glibc (not a static musl build) because the GPU collector dlopen()s the
# driver's libnvidia-ml.so.1, which the NVIDIA container runtime mounts into
# /usr/lib/x86_64-linux-gnu (a default search path), and because name resolution goes
# through getaddrinfo and nsswitch like the host's.
FROM gcr.io/distroless/cc-debian12 AS agent
COPY --from=build /out/linkmeter-agent /usr/local/bin/linkmeter-agent
# 9477: /metrics, /healthz, /readyz, /report. 5201: the throughput server (iperf3's port).
EXPOSE 9477/tcp 5201/tcp
# USER stays root (UID 0), on purpose: raw ICMP sockets need CAP_NET_RAW, and a
# capability added in a pod only becomes effective for root; for another user it would
# need file capabilities, which allowPrivilegeEscalation: false (no_new_privs) disables.
# The DaemonSet drops every other capability, so root here holds only CAP_NET_RAW.
# Where the nodes' net.ipv4.ping_group_range admits all groups, run it as any user
# (runAsUser) without capabilities: the agent then uses unprivileged ICMP sockets.
ENTRYPOINT ["/usr/local/bin/linkmeter-agent"]
CMD ["run"]
