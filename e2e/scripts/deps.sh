#!/usr/bin/env bash
# deps.sh GROUP... — installs the Debian packages of the named groups, idempotently: nothing is
# fetched when everything is already installed, and the script is quiet then.
#   demo      the local cluster and the demo (make demo, make cluster-up)
#   test      demo plus what the unit and end-to-end tests run (make test, make e2e, make deps)
#   bench     the benchmark peers and load/capture tools (make bench)
#   generate  protoc (make generate)
# No group means test. Non-interactive (works with CI=true and no stdin). Must run as root (or via
# sudo).
set -euo pipefail

# What each package is for, so that a group holds only what its targets run.
demo=(
  iptables iproute2 conntrack # node agent: pod network, service proxy (iptables, conntrack -D)
  etcd-server                 # the local cluster's store
  util-linux                  # nsenter, setpriv (proxy init, uid 2102)
  curl                        # demo.sh reads the traffic generator's figures
)
test=(
  "${demo[@]}"
  tcpdump                             # e2e identity tests: the bytes on weft0 are TLS
  prometheus                          # promtool check metrics/rules/config; the viz Prometheus source test runs prometheus
  nginx libnginx-mod-stream haproxy   # benchmarks/harness unit tests check the peers' configs
  chromium                            # the dashboard's browser tests (viz/web/chromium: headless --dump-dom, --screenshot)
)
bench=(
  iptables iproute2 util-linux
  nginx libnginx-mod-stream haproxy   # peers
  wrk nghttp2-client                  # wrk, h2load: load generators to compare against weft-bench
  tshark tcpdump prometheus           # captures and metric checks while measuring
)
generate=(protobuf-compiler libprotobuf-dev)

groups=("$@")
((${#groups[@]} > 0)) || groups=(test)
packages=()
for g in "${groups[@]}"; do
  case "$g" in
    demo) packages+=("${demo[@]}") ;;
    test) packages+=("${test[@]}") ;;
    bench) packages+=("${bench[@]}") ;;
    generate) packages+=("${generate[@]}") ;;
    *) echo "deps.sh: unknown group $g (want demo, test, bench or generate)" >&2; exit 2 ;;
  esac
done

installed() {
  [[ "$(dpkg-query -W -f='${Status}' "$1" 2>/dev/null)" == "install ok installed" ]]
}

missing=()
for p in $(printf '%s\n' "${packages[@]}" | sort -u); do
  installed "$p" || missing+=("$p")
done

if ((${#missing[@]} > 0)); then
  sudo=""
  if [[ $(id -u) -ne 0 ]]; then
    command -v sudo >/dev/null || { echo "deps.sh: need root to install: ${missing[*]}" >&2; exit 1; }
    sudo="sudo"
  fi
  start=$SECONDS
  echo "deps: installing (${groups[*]}): ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  # tshark asks whether non-root users may capture; answer "no" up front.
  if [[ " ${missing[*]} " == *" tshark "* ]]; then
    echo "wireshark-common wireshark-common/install-setuid boolean false" | $sudo debconf-set-selections
  fi
  $sudo apt-get update -qq </dev/null
  $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" </dev/null
  echo "deps: installed ${#missing[@]} packages in $((SECONDS - start))s"
fi

# Pod traffic crossing the weft0 bridge must traverse iptables (Service DNAT for hairpin traffic).
# The module may be built in or unavailable in a container; the node agent checks the sysctl itself.
if [[ ! -e /proc/sys/net/bridge/bridge-nf-call-iptables ]]; then
  modprobe br_netfilter >/dev/null 2>&1 || true
fi
