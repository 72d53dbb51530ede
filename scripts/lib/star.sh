# Shared by the bench scripts: a star of network namespaces for one agent to probe.
#
#   source scripts/lib/star.sh
#   star_create TAG PEERS [RATE]   # TAG-hub plus TAG-p1..TAG-pPEERS, each joined to the
#                                  # hub by a veth (10.79.I.1 hub side, 10.79.I.2 peer
#                                  # side), shaped with tbf at RATE (e.g. 100mbit) if given
#   star_delete TAG                # removes every TAG-* namespace
#
# 10.79.0.0/16 is used only inside these namespaces.

star_delete() {
  local tag=$1 ns
  for ns in $(ip netns list | awk '{print $1}' | grep "^${tag}-" || true); do
    ip netns del "$ns" 2>/dev/null || true
  done
}

star_create() {
  local tag=$1 peers=$2 rate=${3:-} hub="$1-hub" i ns
  ip netns add "$hub"
  ip -n "$hub" link set lo up
  for i in $(seq 1 "$peers"); do
    ns="${tag}-p$i"
    ip netns add "$ns"
    ip -n "$ns" link set lo up
    ip link add "${tag}h$i" netns "$hub" type veth peer name "${tag}p$i" netns "$ns"
    ip -n "$hub" addr add "10.79.$i.1/30" dev "${tag}h$i"
    ip -n "$ns" addr add "10.79.$i.2/30" dev "${tag}p$i"
    ip -n "$hub" link set "${tag}h$i" up
    ip -n "$ns" link set "${tag}p$i" up
    if [[ -n "$rate" ]]; then
      ip netns exec "$hub" tc qdisc add dev "${tag}h$i" root tbf rate "$rate" burst 32kb latency 20ms
      ip netns exec "$ns" tc qdisc add dev "${tag}p$i" root tbf rate "$rate" burst 32kb latency 20ms
    fi
  done
}
