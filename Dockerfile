# syntax=docker/dockerfile:1
# linkmeter-agent image: the DaemonSet in manifests/agent/daemonset.yaml runs it.
#   docker build -t ghcr.io/linkmeter/linkmeter-agent:0.1.0 .
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

# ---- runtime -------------------------------------------------------------------------
# distroless "cc": glibc, libgcc, libssl and CA certificates, no shell or package
# manager. glibc (not a static musl build) because the GPU collector dlopen()s the
# driver's libnvidia-ml.so.1, which the NVIDIA container runtime mounts into
# /usr/lib/x86_64-linux-gnu (a default search path), and because name resolution goes
# through getaddrinfo and nsswitch like the host's.
FROM gcr.io/distroless/cc-debian12
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
