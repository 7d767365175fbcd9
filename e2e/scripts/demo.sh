#!/usr/bin/env bash
# demo.sh up|down — the weft demo on the local cluster (called by `make demo` / `make demo-down`,
# after `deps build kube-bins`).
#   up:   start the local cluster (idempotent), apply e2e/demo/manifests/demo.yaml, wait for every
#         demo pod to be Ready, let traffic run, print the traffic generator's figures.
#   down: stop the local cluster and remove everything it created.
# Env: DEMO_TRAFFIC_SECONDS (default 15), DEMO_WAIT_TIMEOUT (default 300s).
set -euo pipefail

root=$(cd "$(dirname "$0")/../.." && pwd)
cd "$root"
bin="${WEFT_BIN_DIR:-$root/bin}"
cache="${WEFT_CACHE_DIR:-$root/.cache}"
export KUBECONFIG="$cache/cluster/kubeconfig"
manifest="$root/e2e/demo/manifests/demo.yaml"
ns=demo
traffic_seconds="${DEMO_TRAFFIC_SECONDS:-15}"
wait_timeout="${DEMO_WAIT_TIMEOUT:-300s}"

die() { echo "demo: $*" >&2; exit 1; }

need_bins() {
  local b missing=()
  for b in weft-cluster weft-node weft-testapp demo-web demo-books demo-authors demo-traffic; do
    [ -x "$bin/$b" ] || missing+=("$bin/$b")
  done
  [ ${#missing[@]} -eq 0 ] || die "missing binaries: ${missing[*]} (run 'make build')"
}

# explain_failure prints what the demo pods are doing and where their logs are.
explain_failure() {
  echo "demo: the demo pods did not become Ready within $wait_timeout" >&2
  kubectl -n "$ns" get pods -o wide >&2 || true
  kubectl -n "$ns" get events --sort-by=.lastTimestamp 2>/dev/null | tail -20 >&2 || true
  echo "logs:" >&2
  echo "  node agent:  $cache/cluster/logs/weft-node.log" >&2
  echo "  cluster:     $cache/cluster/logs/" >&2
  local d
  for d in "$cache"/cluster/node/pods/${ns}_*; do
    [ -d "$d" ] && echo "  containers:  $d/*.log" >&2
  done
  exit 1
}

up() {
  need_bins
  echo "==> starting the local cluster"
  "$bin/weft-cluster" up
  echo "==> applying $manifest"
  kubectl apply -f "$manifest"
  echo "==> waiting for the demo Deployments to roll out (timeout $wait_timeout)"
  local d
  for d in books authors web traffic; do
    kubectl -n "$ns" rollout status "deployment/$d" --timeout="$wait_timeout" || explain_failure
  done
  kubectl -n "$ns" wait --for=condition=Ready pod --all --timeout="$wait_timeout" || explain_failure
  kubectl -n "$ns" get pods -o wide

  local ip
  ip=$(kubectl -n "$ns" get pod -l app=traffic -o jsonpath='{.items[0].status.podIP}')
  [ -n "$ip" ] || die "traffic pod has no IP"
  local stats="http://$ip:9000/stats"
  # Start the figures now that every backend is Ready (start-up connection errors are noise).
  curl -fsS --max-time 10 -X POST "$stats?reset=1" \
    || die "could not reach the traffic generator at $stats (is the pod network up? node log: $cache/cluster/logs/weft-node.log)"
  echo "==> letting traffic run for ${traffic_seconds}s"
  sleep "$traffic_seconds"
  echo "==> traffic figures over the last ${traffic_seconds}s ($stats)"
  curl -fsS --max-time 10 "$stats?format=table" \
    || die "could not fetch http://$ip:9000/stats (traffic log: $cache/cluster/node/pods/${ns}_<traffic pod>_<uid>/traffic.log)"
  cat <<MSG

The demo is running. Use kubectl against the local cluster:
  export KUBECONFIG=$KUBECONFIG
  kubectl -n $ns get pods,svc
  curl -s http://\$(kubectl -n $ns get pod -l app=traffic -o jsonpath='{.items[0].status.podIP}'):9000/stats?format=table
Stop everything:
  make demo-down
MSG
}

down() {
  [ -x "$bin/weft-cluster" ] || die "missing $bin/weft-cluster (run 'make build')"
  "$bin/weft-cluster" down
}

case "${1:-}" in
  up) up ;;
  down) down ;;
  *) echo "usage: $0 up|down" >&2; exit 2 ;;
esac
