#!/usr/bin/env bash
# Throughput probe accuracy and cost versus `iperf3 -t 10` on tbf-shaped links.
#
# Builds the agent in release mode, makes two network namespaces joined by a veth pair
# shaped with tbf at each rate (both directions), runs a stock `iperf3 -s` in one, and
# from the other compares `iperf3 -t 10` (and `-R`) with our adaptive probe against the
# same server: Mbit/s, ratio, bytes moved and duration. Then the same on loopback,
# unshaped. Needs root, iproute2 and iperf3. Everything it creates is removed on exit.
#
# Usage: scripts/bench-throughput.sh [RATE_MBIT...]   (default: 10 40 200 1000)
# Env:   PROBE_BIN=path   probe binary taking `probe HOST:PORT --json` (default: the
#                         release linkmeter-agent)
#        IPERF_TIME=10    iperf3's -t
set -euo pipefail

cd "$(dirname "$0")/.."
rates=("$@")
[ ${#rates[@]} -gt 0 ] || rates=(10 40 200 1000)
iperf_time=${IPERF_TIME:-10}

for tool in ip tc iperf3 python3; do
    command -v "$tool" >/dev/null || { echo "bench-throughput: $tool is required" >&2; exit 1; }
done
[ "$(id -u)" = 0 ] || { echo "bench-throughput: needs root for network namespaces" >&2; exit 1; }

echo "building release..." >&2
cargo build --release --quiet -p linkmeter-agent --bin linkmeter-agent >&2
PROBE_BIN=${PROBE_BIN:-$PWD/target/release/linkmeter-agent}

tag="lmbench$$"
ns_a="${tag}a"
ns_b="${tag}b"
pids=()
cleanup() {
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
    ip netns del "$ns_a" 2>/dev/null || true
    ip netns del "$ns_b" 2>/dev/null || true
}
trap cleanup EXIT INT TERM

ip netns add "$ns_a"
ip netns add "$ns_b"
ip link add "${tag}x" netns "$ns_a" type veth peer name "${tag}y" netns "$ns_b"
ip -n "$ns_a" addr add 10.201.0.1/30 dev "${tag}x"
ip -n "$ns_b" addr add 10.201.0.2/30 dev "${tag}y"
for ns in "$ns_a" "$ns_b"; do ip -n "$ns" link set lo up; done
ip -n "$ns_a" link set "${tag}x" up
ip -n "$ns_b" link set "${tag}y" up

port=5299
ip netns exec "$ns_b" iperf3 -s -p "$port" >/dev/null 2>&1 &
pids+=($!)
lo_port=5298
iperf3 -s -B 127.0.0.1 -p "$lo_port" >/dev/null 2>&1 &
pids+=($!)
sleep 0.5

shape() { # rate_mbit: tbf on both ends, 20 ms queue (as the test lab does)
    local rate=$1 per_ms burst limit
    per_ms=$((rate * 125))
    burst=$((per_ms > 15140 ? per_ms : 15140))
    limit=$((per_ms * 20 + burst))
    tc -n "$ns_a" qdisc replace dev "${tag}x" root tbf rate "${rate}mbit" burst "$burst" limit "$limit"
    tc -n "$ns_b" qdisc replace dev "${tag}y" root tbf rate "${rate}mbit" burst "$burst" limit "$limit"
}

run_iperf() { # ns host port extra... -> "bps bytes seconds"
    local ns=$1 host=$2 p=$3; shift 3
    local out
    for _ in 1 2 3 4 5; do
        if [ "$ns" = "-" ]; then
            out=$(iperf3 -c "$host" -p "$p" -t "$iperf_time" -J "$@" 2>/dev/null) && break
        else
            out=$(ip netns exec "$ns" iperf3 -c "$host" -p "$p" -t "$iperf_time" -J "$@" 2>/dev/null) && break
        fi
        sleep 0.5
    done
    python3 -c '
import json, sys
e = json.loads(sys.stdin.read())["end"]
r, s = e["sum_received"], e["sum_sent"]
print(r["bits_per_second"], max(r["bytes"], s["bytes"]), r["seconds"])' <<<"$out"
}

run_ours() { # ns host port -> two lines "dir bps bytes seconds"
    local ns=$1 host=$2 p=$3 out
    if [ "$ns" = "-" ]; then
        out=$("$PROBE_BIN" probe "$host:$p" --json 2>/dev/null)
    else
        out=$(ip netns exec "$ns" "$PROBE_BIN" probe "$host:$p" --json 2>/dev/null)
    fi
    python3 -c '
import json, sys
for r in json.loads(sys.stdin.read())["results"]:
    cost = max(r["app_bytes"], r["bytes"], r["peer_bytes"] or 0)
    print(r["direction"], r["bits_per_second"], cost, r["duration"], "conv" if r["converged"] else r["stop"])' <<<"$out"
}

printf '%-9s %-8s %12s %12s %7s %13s %13s %7s %7s %6s %s\n' \
    link dir "iperf3 Mb/s" "ours Mb/s" ratio "iperf3 bytes" "ours bytes" "bytes%" "iperf s" "ours s" stop
row() { # link dir ibps ibytes isecs obps obytes osecs stop
    python3 -c '
import sys
link, d, ib, iby, isec, ob, oby, osec, stop = sys.argv[1:]
ib, iby, isec, ob, oby, osec = map(float, (ib, iby, isec, ob, oby, osec))
print("%-9s %-8s %12.2f %12.2f %7.4f %13d %13d %6.1f%% %7.2f %6.2f %s" % (
    link, d, ib / 1e6, ob / 1e6, ob / ib if ib else 0, iby, oby, 100 * oby / iby if iby else 0, isec, osec, stop))
' "$@"
}

bench() { # label ns host port
    local label=$1 ns=$2 host=$3 p=$4
    local fwd rev ours
    fwd=$(run_iperf "$ns" "$host" "$p")
    sleep 0.3
    rev=$(run_iperf "$ns" "$host" "$p" -R)
    sleep 0.3
    ours=$(run_ours "$ns" "$host" "$p")
    sleep 0.3
    read -r ob_s oby_s osec_s ostop_s < <(awk '$1=="send"{print $2, $3, $4, $5}' <<<"$ours")
    read -r ob_r oby_r osec_r ostop_r < <(awk '$1=="receive"{print $2, $3, $4, $5}' <<<"$ours")
    # shellcheck disable=SC2086
    row "$label" send $fwd "$ob_s" "$oby_s" "$osec_s" "$ostop_s"
    # shellcheck disable=SC2086
    row "$label" receive $rev "$ob_r" "$oby_r" "$osec_r" "$ostop_r"
}

for rate in "${rates[@]}"; do
    shape "$rate"
    bench "${rate}mbit" "$ns_a" 10.201.0.2 "$port"
done
bench loopback - 127.0.0.1 "$lo_port"
