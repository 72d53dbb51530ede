#!/usr/bin/env bash
# The whole product on this one machine: a seed-like cluster in network namespaces
# (vps behind 10 Mbit/s and 22.5 ms each way; home-1 and home-2 on a 1 Gbit/s LAN with
# 0.5 ms each way; a fake-NVML GPU on home-1), a real kube-apiserver and kube-scheduler,
# one linkmeter agent per node and the aggregator with its extender. Prints the
# measurements as they come in, the matrix beside the configured truth, the
# NetworkTopology, where three example pods go and why, and writes a heatmap picture.
#
#   sudo scripts/demo.sh            the demo (about 2-3 minutes once built)
#   sudo scripts/demo.sh --keep     leave it running until Ctrl-C, with a KUBECONFIG line
#   sudo scripts/demo.sh --check    CI: assert the matrix (against ping and iperf3 on the
#                                   same paths), the placements and the Grafana dashboard,
#                                   and that nothing is left running afterwards
#   sudo scripts/demo.sh --debug    use the debug build (scripts/test.sh has built it)
#   scripts/demo.sh --help          every option
#
# The first run builds kube-apiserver and kube-scheduler from Debian's source package
# (scripts/kube-env.sh, 8-10 minutes on 2 cores, cached) and linkmeter in release mode.
# Everything the demo starts is stopped on exit, Ctrl-C or failure.
set -euo pipefail
cd "$(dirname "$0")/.."

check=0
profile=release
args=()
for a in "$@"; do
  case $a in
    --debug)
      profile=debug
      continue
      ;;
    --check) check=1 ;;
    -h | --help)
      sed -n '2,18p' "$0" | sed 's/^# \{0,1\}//'
      echo
      if [[ -x target/release/linkmeter-demo ]]; then
        target/release/linkmeter-demo --help
      else
        echo "(the demo binary's own options: target/release/linkmeter-demo --help after the first build)"
      fi
      exit 0
      ;;
  esac
  args+=("$a")
done

if [[ $(id -u) -ne 0 ]]; then
  echo "demo.sh: needs root (it creates network namespaces): sudo $0 $*" >&2
  exit 64
fi

t0=$(date +%s.%N)
step_start=$t0
step() {
  local now
  now=$(date +%s.%N)
  awk -v now="$now" -v t0="$t0" -v last="$step_start" -v what="$1" \
    'BEGIN { printf "[%6.1fs] %s (%.1fs)\n", now - t0, what, now - last }'
  step_start=$now
}

source scripts/lib/packages.sh
install_missing demo.sh iperf3:iperf3 ping:iputils-ping ip:iproute2 ss:iproute2 curl:curl \
  prometheus:prometheus
step "packages: iperf3, ping, iproute2, curl, prometheus"

scripts/kube-env.sh install >/dev/null
step "kube-apiserver, kube-scheduler, etcd, kubectl (scripts/kube-env.sh install, cached)"

build=(--locked --quiet -p linkmeter-agent -p linkmeter-aggregator -p linkmeter-tests --bins)
[[ $profile == release ]] && build+=(--release)
cargo build "${build[@]}"
step "cargo build ($profile: linkmeter-agent, linkmeter-aggregator, lab-relay, linkmeter-demo)"

# What runs before the demo, to tell afterwards whether it left anything behind.
procs='linkmeter-agent|linkmeter-aggregator|lab-relay|kube-apiserver|kube-scheduler|etcd|prometheus|iperf3'
snapshot() {
  {
    ip netns list | awk '{print "netns " $1}'
    ss -Htlnu | awk '{print "port " $1 " " $5}'
    { pgrep -a -f -- "$procs" || true; } | { grep -v -e pgrep -e demo.sh || true; } |
      awk '{print "process " $1 " " $2}'
  } | sort
}
before=""
if ((check)); then before=$(snapshot); fi

demo_pid=""
stop_demo() {
  if [[ -n $demo_pid ]] && kill -0 "$demo_pid" 2>/dev/null; then
    kill -TERM "$demo_pid" 2>/dev/null || true
    wait "$demo_pid" 2>/dev/null || true
  fi
}
trap stop_demo EXIT
trap 'stop_demo; exit 130' INT
trap 'stop_demo; exit 143' TERM

set +e
target/$profile/linkmeter-demo "${args[@]}" &
demo_pid=$!
wait "$demo_pid"
status=$?
set -e
demo_pid=""

if ((check)); then
  # Processes can take a moment to be reaped after the namespaces go.
  left=""
  for _ in $(seq 1 20); do
    left=$(comm -13 <(echo "$before") <(snapshot))
    [[ -z $left ]] && break
    sleep 0.5
  done
  if [[ -n $left ]]; then
    echo "demo.sh --check: left running after the demo:" >&2
    echo "$left" >&2
    status=1
  else
    echo "demo.sh --check: nothing left running (namespaces, listening ports, processes as before)"
  fi
fi
step "demo finished with status $status"
exit "$status"
