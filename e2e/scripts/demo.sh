#!/usr/bin/env bash
# demo.sh up|down — the weft demo on the local cluster (called by `make demo` / `make demo-down`,
# after `deps build kube-bins`).
#   up:   start the local cluster (idempotent), install weft (weft install --crds | kubectl apply,
#         weft install | kubectl apply) and check it (weft check --wait 3m), annotate namespace
#         demo for injection, apply e2e/demo/manifests/demo.yaml, wait for every meshed pod to be
#         Ready, check the proxies (weft check --proxy -n demo), let traffic run, print the traffic
#         generator's figures and the proxies' (weft viz install; viz stat, edges, routes, top).
#   down: stop the local cluster and remove everything it created.
# Every step prints its name and the time elapsed since DEMO_START (epoch seconds; `make demo` sets
# it before building, so the figure includes the build) or since the script started.
# Env: DEMO_TRAFFIC_SECONDS (default 15), DEMO_WAIT_TIMEOUT (default 300s), DEMO_START.
set -euo pipefail

root=$(cd "$(dirname "$0")/../.." && pwd)
cd "$root"
bin="${WEFT_BIN_DIR:-$root/bin}"
cache="${WEFT_CACHE_DIR:-$root/.cache}"
export KUBECONFIG="$cache/cluster/kubeconfig"
manifest="$root/e2e/demo/manifests/demo.yaml"
profile="$root/e2e/demo/manifests/books-profile.yaml"
ns=demo
traffic_seconds="${DEMO_TRAFFIC_SECONDS:-15}"
wait_timeout="${DEMO_WAIT_TIMEOUT:-300s}"

start="${DEMO_START:-$(date +%s)}"

die() { echo "demo: $*" >&2; exit 1; }

# step prints a progress line: the elapsed time and what the demo does now.
step() {
  local e=$(($(date +%s) - start))
  printf 'demo: [%dm%02ds] ==> %s\n' $((e / 60)) $((e % 60)) "$*"
}

need_bins() {
  local b missing=()
  for b in weft weft-controller weft-proxy weft-cluster weft-node weft-testapp demo-web demo-books demo-authors demo-traffic; do
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
  echo "  containers:  kubectl -n $ns logs POD [-c CONTAINER] [--previous]" >&2
  echo "  node agent:  $cache/cluster/logs/weft-node.log" >&2
  echo "  cluster:     $cache/cluster/logs/" >&2
  exit 1
}

up() {
  need_bins
  step "starting the local cluster"
  "$bin/weft-cluster" up
  install_weft
  step "meshing namespace $ns: kubectl annotate ns $ns weft.io/inject=enabled"
  kubectl create namespace "$ns" --dry-run=client -o yaml | kubectl apply -f - >/dev/null
  kubectl annotate namespace "$ns" weft.io/inject=enabled --overwrite >/dev/null
  step "applying $manifest"
  kubectl apply -f "$manifest"
  step "applying the books ServiceProfile: $profile"
  kubectl apply -f "$profile"
  # Pods created before the namespace was annotated (an earlier unmeshed demo) have no proxy.
  local unmeshed
  unmeshed=$(kubectl -n "$ns" get pods -o jsonpath='{range .items[*]}{.metadata.name}{" "}{.metadata.annotations.weft\.io/proxy-version}{"\n"}{end}' | awk 'NF == 1' | wc -l)
  if [ "$unmeshed" -gt 0 ]; then
    step "$unmeshed demo pods predate the annotation: kubectl rollout restart"
    kubectl -n "$ns" rollout restart deployment >/dev/null
  fi
  step "waiting for the meshed demo to roll out (timeout $wait_timeout)"
  local d
  for d in books authors web traffic; do
    kubectl -n "$ns" rollout status "deployment/$d" --timeout="$wait_timeout" || explain_failure
  done
  kubectl -n "$ns" wait --for=condition=Ready pod --all --timeout="$wait_timeout" || explain_failure
  kubectl -n "$ns" get pods -o custom-columns='POD:.metadata.name,READY:.status.containerStatuses[*].ready,PROXY:.metadata.annotations.weft\.io/proxy-version,INJECTED-BY:.metadata.annotations.weft\.io/injected-by,IP:.status.podIP'
  step "checking the demo's proxies: weft check --proxy -n $ns"
  "$bin/weft" check --proxy -n "$ns" || die "weft check --proxy -n $ns failed (its output is above; docs/checks.md has each fix)"

  local ip
  ip=$(kubectl -n "$ns" get pod -l app=traffic -o jsonpath='{.items[0].status.podIP}')
  [ -n "$ip" ] || die "traffic pod has no IP"
  local stats="http://$ip:9000/stats"
  # Start the figures now that every backend is Ready (start-up connection errors are noise).
  curl -fsS --max-time 10 -X POST "$stats?reset=1" \
    || die "could not reach the traffic generator at $stats (is the pod network up? node log: $cache/cluster/logs/weft-node.log)"
  step "letting traffic run for ${traffic_seconds}s"
  sleep "$traffic_seconds"
  step "what the traffic generator saw over the last ${traffic_seconds}s ($stats)"
  curl -fsS --max-time 10 "$stats?format=table" \
    || die "could not fetch $stats"
  echo
  step "what the proxies saw: weft viz stat deploy -n $ns (inbound traffic per workload, over mTLS between proxies)"
  "$bin/weft" viz stat deploy -n "$ns" -t 1m
  step "who talks to whom: weft viz edges deploy -n $ns"
  "$bin/weft" viz edges deploy -n "$ns" -t 1m
  step "per-route figures of the traffic generator's calls to books: weft viz routes deploy/traffic --to svc/books -n $ns"
  "$bin/weft" viz routes deploy/traffic --to svc/books -n "$ns" -t 1m
  step "live requests to books, 5s: weft viz top deploy/books -n $ns --once --duration 5s (GET /fail fails)"
  "$bin/weft" viz top deploy/books -n "$ns" --once --duration 5s \
    || echo "demo: weft viz top failed (see docs/viz-tap.md); the demo itself is running"
  cat <<MSG

The meshed demo is running ($(elapsed) since the start). Use kubectl and weft against the local cluster:
  export KUBECONFIG=$KUBECONFIG
  kubectl -n $ns get pods,svc
  kubectl -n $ns logs deploy/web -f                        # the app's log, followed
  kubectl -n $ns logs deploy/web -c weft-proxy --tail 20   # its proxy's log
  kubectl -n $ns exec deploy/web -c web -- cat /etc/hostname
  kubectl -n $ns exec -it deploy/web -c web -- sh          # a shell in the pod (its network, mounts)
  kubectl -n $ns port-forward svc/web 8080:8080            # then: curl http://localhost:8080/
  bin/weft viz stat deploy -n $ns                          # golden metrics per workload (last minute)
  bin/weft viz routes deploy/traffic --to svc/books -n $ns # per ServiceProfile route (GET /fail fails)
  bin/weft viz edges deploy -n $ns                         # who calls whom, and whether over mTLS
  bin/weft viz tap deploy/web -n $ns --max 10              # live requests (headers redacted)
  bin/weft viz top deploy/web -n $ns                       # live table of paths; q quits
  bin/weft viz dashboard                                   # web UI at http://127.0.0.1:50750 (--open)
  bin/weft check
  bin/weft check --proxy -n $ns
  bin/weft version
How the local cluster serves logs, exec and port-forward: docs/local-cluster.md; viz: docs/viz.md.
Stop everything:
  make demo-down
MSG
}

# install_weft installs the CRDs and the control plane, exactly as a user would, unless weft is
# already installed.
install_weft() {
  if kubectl -n weft get configmap weft-config >/dev/null 2>&1; then
    step "weft is already installed"
  else
    step "weft install --crds | kubectl apply -f -"
    "$bin/weft" install --crds | kubectl apply -f -
    kubectl wait --for condition=Established --timeout=60s crd/serviceprofiles.weft.io
    step "weft install | kubectl apply -f -"
    "$bin/weft" install | kubectl apply -f -
  fi
  local d
  for d in weft-identity weft-destination weft-proxy-injector; do
    kubectl -n weft rollout status "deployment/$d" --timeout="$wait_timeout" \
      || die "control plane deployment $d did not become ready (pods: kubectl -n weft get pods; logs: kubectl -n weft logs deploy/$d)"
  done
  step "checking the control plane: weft check --wait 3m"
  "$bin/weft" check --wait 3m || die "weft check failed (its output is above; docs/checks.md has each fix)"
  step "weft viz install | kubectl apply -f -"
  "$bin/weft" viz install | kubectl apply -f - >/dev/null
  kubectl -n weft-viz rollout status deployment/weft-viz --timeout="$wait_timeout" \
    || die "the viz extension did not become ready (pods: kubectl -n weft-viz get pods; logs: kubectl -n weft-viz logs deploy/weft-viz)"
}

elapsed() {
  local e=$(($(date +%s) - start))
  printf '%dm%02ds' $((e / 60)) $((e % 60))
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
