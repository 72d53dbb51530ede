# Shared by test.sh and demo.sh: install the Debian packages whose commands are missing.
#
#   source scripts/lib/packages.sh
#   install_missing PROG COMMAND:PACKAGE...   # e.g. install_missing test.sh ip:iproute2 cc:"gcc libc6-dev"
#
# Needs root when something is missing (says so and exits 1 otherwise). The Debian
# prometheus package starts a service on :9090 when it can; linkmeter's tests and demo
# start their own on a free port, so a packaged one is stopped.

install_missing() {
  local prog=$1 pair cmd pkgs need=()
  shift
  for pair in "$@"; do
    cmd=${pair%%:*}
    pkgs=${pair#*:}
    # shellcheck disable=SC2206 # a pair may name several packages, space-separated
    command -v "$cmd" >/dev/null || need+=($pkgs)
  done
  if ((${#need[@]})); then
    if [[ $(id -u) -ne 0 ]]; then
      echo "$prog: missing ${need[*]} and not root to install them" >&2
      exit 1
    fi
    echo "$prog: installing ${need[*]}" >&2
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
  fi
  if command -v systemctl >/dev/null && systemctl is-active --quiet prometheus 2>/dev/null; then
    systemctl stop prometheus || true
  fi
}
