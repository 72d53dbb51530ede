#!/usr/bin/env bash
# Steady-state overhead of `linkmeter-agent run` probing 32 peers.
#
# Builds a hub namespace running the agent and PEERS peer namespaces, each joined to the
# hub by a veth shaped to 100 Mbit/s and running `iperf3 -s`, so the agent's throughput
# budget is on for real (default period 1h, paced: one test every period/peers). Runs for
# SECONDS (default 300) and prints RSS at start and end, CPU seconds used, and the size
# and time of a /metrics scrape. Needs root.
#
#   scripts/bench-overhead.sh [SECONDS] [PEERS]
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-300}
peers=${2:-32}
for tool in iperf3 curl; do
  command -v $tool >/dev/null || { apt-get update -qq && apt-get install -y -qq $tool >/dev/null; }
done
cargo build -q --release -p linkmeter-agent
bin=$PWD/target/release/linkmeter-agent

source scripts/lib/star.sh
tag="lmo$$"
hub="${tag}-hub"
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  star_delete "$tag"
}
trap cleanup EXIT
star_create "$tag" "$peers" 100mbit
args=()
for i in $(seq 1 "$peers"); do
  ip netns exec "${tag}-p$i" iperf3 -s -B "10.79.$i.2" >/dev/null 2>&1 &
  pids+=($!)
  args+=(--peer "p$i=10.79.$i.2")
done

log=$(mktemp)
ip netns exec "$hub" "$bin" run --node-name bench --listen 127.0.0.1:9477 --no-gpu \
  --throughput-max-bytes 64MiB "${args[@]}" 2>"$log" &
agent=$!
pids+=($agent)
# The agent's pid is that of `ip netns exec`, which execs the binary in place.
for _ in $(seq 1 100); do
  ip netns exec "$hub" curl -sf 127.0.0.1:9477/readyz >/dev/null 2>&1 && break
  sleep 0.2
done

rss_kib() { awk '/^VmRSS/{print $2}' "/proc/$agent/status"; }
cpu_ticks() { awk '{print $14 + $15}' "/proc/$agent/stat"; }
hz=$(getconf CLK_TCK)
rss_start=$(rss_kib)
cpu_start=$(cpu_ticks)
start=$(date +%s)
samples=()
while (( $(date +%s) - start < secs )); do
  sleep 30
  samples+=("$(rss_kib)")
done
rss_end=$(rss_kib)
cpu_end=$(cpu_ticks)
elapsed=$(( $(date +%s) - start ))
scrape=$(ip netns exec "$hub" curl -s -o /tmp/$tag.metrics -w '%{size_download} %{time_total}' 127.0.0.1:9477/metrics)
series=$(grep -vc '^#' /tmp/$tag.metrics || true)
rm -f /tmp/$tag.metrics
tests=$(ip netns exec "$hub" curl -s 127.0.0.1:9477/metrics | awk '/^linkmeter_throughput_tests_total/{s+=$2} END{print s+0}')

cpu_s=$(awk -v t=$((cpu_end - cpu_start)) -v hz="$hz" 'BEGIN{printf "%.2f", t/hz}')
cpu_pct=$(awk -v t=$((cpu_end - cpu_start)) -v hz="$hz" -v e="$elapsed" 'BEGIN{printf "%.3f", 100*t/hz/e}')
echo "agent overhead: $peers peers, 10s ping interval, throughput budget on, ${elapsed}s"
echo "  RSS start / end       $((rss_start / 1024)).$(( (rss_start % 1024) * 10 / 1024 )) MiB / $((rss_end / 1024)).$(( (rss_end % 1024) * 10 / 1024 )) MiB"
echo "  RSS every 30s (KiB)   ${samples[*]}"
echo "  CPU                   ${cpu_s}s = ${cpu_pct}% of one core"
echo "  throughput tests run  $tests"
echo "  /metrics              $(echo "$scrape" | awk '{printf "%d bytes, %.1f ms", $1, $2*1000}'), $series series"
grep -ciE '"level":"(error)"| ERROR ' "$log" >/dev/null && { echo "  errors in the agent log:"; grep -iE ' ERROR ' "$log" | head -5; }
rm -f "$log"
