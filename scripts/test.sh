#!/usr/bin/env bash
# The whole test suite, as CI runs it. Installs what the tests need on a fresh Debian
# machine (iperf3, ping, iproute2, Prometheus, gcc), then runs format, lint and tests.
#
#   scripts/test.sh            everything, then the demo in its checking mode
#                              (scripts/demo.sh --check)
#   scripts/test.sh -p NAME    extra arguments go to `cargo test` (and the demo is left out)
#
# The lab tests create network namespaces and need root; without root they fail with a
# clear message unless LINKMETER_SKIP_LAB=1.
set -euo pipefail
cd "$(dirname "$0")/.."

source scripts/lib/packages.sh
install_missing test.sh iperf3:iperf3 ping:iputils-ping ip:iproute2 tc:iproute2 \
  cc:"gcc libc6-dev" prometheus:prometheus jq:jq curl:curl setpriv:util-linux sysctl:procps

# The Kubernetes tests need kube-apiserver and etcd: built once from Debian's source
# package (about 5 minutes on 2 cores) and cached; KUBEBUILDER_ASSETS skips the build.
if [[ "${LINKMETER_SKIP_KUBE:-0}" != 1 ]]; then
  echo "== kube test environment" >&2
  scripts/kube-env.sh install >/dev/null
fi

echo "== cargo fmt --check" >&2
cargo fmt --all -- --check
echo "== cargo clippy" >&2
cargo clippy --workspace --all-targets --locked -- -D warnings
echo "== cargo build (binaries the integration tests run)" >&2
cargo build --workspace --bins --locked
echo "== cargo test" >&2
# --no-fail-fast: one failing test binary must not hide the results of the others.
# --show-output: the timing tests print their figures and the references they were
# held to; CI's log keeps them for passing tests too.
harness_args=(--show-output)
for a in "$@"; do [[ $a == -- ]] && harness_args=(); done
# The output is also kept in a file so that, on failure, the panic messages can be
# repeated at the very end: CI shows the tail, and with --show-output and backtraces
# the reason of a failure is otherwise far above it.
log=$(mktemp)
trap 'rm -f "$log"' EXIT
set +e
if ((${#harness_args[@]})); then
  cargo test --workspace --locked --no-fail-fast "$@" -- "${harness_args[@]}" 2>&1 | tee "$log"
else
  cargo test --workspace --locked --no-fail-fast "$@" --show-output 2>&1 | tee "$log"
fi
status=${PIPESTATUS[0]}
set -e
# The demo, checked: the whole product on one machine (about 90 s, on the debug build
# made above), held to ping/iperf3, the expected placements and the dashboard's data.
demo_status=0
if (($# == 0)) && [[ "${LINKMETER_SKIP_LAB:-0}" != 1 && "${LINKMETER_SKIP_KUBE:-0}" != 1 ]]; then
  echo "== scripts/demo.sh --check" >&2
  set +e
  scripts/demo.sh --check --debug 2>&1 | tee -a "$log"
  demo_status=${PIPESTATUS[0]}
  set -e
fi
if ((status != 0)); then
  echo "== why the failing tests failed (their panic messages; the full output is above)" >&2
  grep -A6 -E "panicked at|^Error: " "$log" | grep -viE "^stack backtrace|^ +[0-9]+: |^ +at " | head -120 >&2
fi
if ((demo_status != 0)); then
  echo "== the demo's check failed (exit $demo_status); its reasons:" >&2
  grep -A30 -E "^linkmeter-demo: |demo.sh --check: left running" "$log" | head -60 >&2
  ((status != 0)) || status=$demo_status
fi
exit "$status"
