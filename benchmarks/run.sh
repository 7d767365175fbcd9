#!/usr/bin/env bash
# make bench: weft's proxy benchmark (docs/benchmarks.md). Runs as root; everything it creates
# lives in network namespaces on 198.18.128.0/20 and is removed at the end.
set -euo pipefail
cd "$(dirname "$0")/.."
CACHE=${WEFT_CACHE_DIR:-$PWD/.cache}
BIN=${WEFT_BIN_DIR:-$PWD/bin}
mkdir -p "$CACHE/bin"

# Peers from Debian (idempotent). nginx's stream module is a separate package.
need=()
for p in nginx haproxy libnginx-mod-stream iptables iproute2 util-linux; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || need+=("$p")
done
if ((${#need[@]})); then
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}"
fi

go build -o "$CACHE/bin/weft-bench" ./benchmarks/cmd/weft-bench
# Always the current weft-proxy (make bench also builds it); if it does not build, an existing
# binary is used, and without one weft's rows read "not run".
mkdir -p "$BIN"
go build -o "$BIN/weft-proxy" ./proxy/cmd/weft-proxy || echo "weft-proxy does not build: using $BIN/weft-proxy if present" >&2

rev=$(git rev-parse --short HEAD 2>/dev/null || echo unknown)
# Raised priority (inherited by the generator, backend and proxies) keeps other work on the
# machine from stalling the measurement; every peer gets the same treatment.
exec nice -n -10 "$CACHE/bin/weft-bench" run -note "weft-proxy built from commit $rev$(git diff --quiet -- proxy 2>/dev/null || echo ' plus uncommitted changes')." -out benchmarks/results -weft-proxy "$BIN/weft-proxy" \
  -duration "${BENCH_DURATION:-10s}" -warmup "${BENCH_WARMUP:-2s}" -repeat "${BENCH_REPEAT:-2}" ${BENCH_PEERS:+-peers "$BENCH_PEERS"}
