#!/usr/bin/env bash
# Wall time and peak RSS of one `snapshot` probing 8 peers x 20 probes at 100 ms.
#
# Peers are 8 lab namespaces joined to a hub namespace by plain veths, so each peer is
# a real host with its own address. Sequential probing would take 8 x 2 s; concurrent
# probing should take about 2 s. Prints one figure per line; run as root.
#
#   scripts/bench-snapshot.sh [PEERS] [COUNT] [INTERVAL]
set -euo pipefail
cd "$(dirname "$0")/.."
peers=${1:-8}
count=${2:-20}
interval=${3:-100ms}
command -v /usr/bin/time >/dev/null || { apt-get update -qq && apt-get install -y -qq time >/dev/null; }
cargo build -q --release -p linkmeter-agent
bin=target/release/linkmeter-agent

source scripts/lib/star.sh
tag="lmb$$"
hub="${tag}-hub"
trap 'star_delete "$tag"' EXIT
star_create "$tag" "$peers"
args=()
for i in $(seq 1 "$peers"); do args+=(--peer "10.79.$i.2"); done

out=$(mktemp)
ip netns exec "$hub" /usr/bin/time -v "$bin" snapshot --no-gpu "${args[@]}" \
  --count "$count" --interval "$interval" --json >/dev/null 2>"$out"
wall=$(awk -F': ' '/Elapsed \(wall clock\)/{print $2}' "$out")
rss=$(awk -F': ' '/Maximum resident set size/{print $2}' "$out")
cpu_user=$(awk -F': ' '/User time/{print $2}' "$out")
cpu_sys=$(awk -F': ' '/System time/{print $2}' "$out")
rm -f "$out"
echo "snapshot: $peers peers x $count probes at $interval"
echo "  wall time        $wall (m:ss)"
echo "  peak RSS         $((rss / 1024)) MiB ($rss KiB)"
echo "  CPU user/system  ${cpu_user}s / ${cpu_sys}s"
