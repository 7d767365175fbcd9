#!/usr/bin/env bash
# Installs the Debian packages the tests, the local cluster and the demo need, idempotently:
# nothing is fetched when everything is already installed, and the script is quiet then.
# Non-interactive (works with CI=true and no stdin). Must run as root (or via sudo).
set -euo pipefail

packages=(
  iptables iproute2 etcd-server protobuf-compiler libprotobuf-dev util-linux conntrack tcpdump tshark
  nginx libnginx-mod-stream haproxy wrk nghttp2-client prometheus
)

installed() {
  [[ "$(dpkg-query -W -f='${Status}' "$1" 2>/dev/null)" == "install ok installed" ]]
}

missing=()
for p in "${packages[@]}"; do
  installed "$p" || missing+=("$p")
done

if ((${#missing[@]} > 0)); then
  sudo=""
  if [[ $(id -u) -ne 0 ]]; then
    command -v sudo >/dev/null || { echo "deps.sh: need root to install: ${missing[*]}" >&2; exit 1; }
    sudo="sudo"
  fi
  echo "deps.sh: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  # tshark asks whether non-root users may capture; answer "no" up front.
  echo "wireshark-common wireshark-common/install-setuid boolean false" | $sudo debconf-set-selections
  $sudo apt-get update -qq </dev/null
  $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" </dev/null
fi

# Pod traffic crossing the weft0 bridge must traverse iptables (Service DNAT for hairpin traffic).
# The module may be built in or unavailable in a container; the node agent checks the sysctl itself.
if [[ ! -e /proc/sys/net/bridge/bridge-nf-call-iptables ]]; then
  modprobe br_netfilter >/dev/null 2>&1 || true
fi
