#!/usr/bin/env bash
# Builds kube-apiserver and kube-controller-manager from k8s.io/kubernetes
# (version pinned in e2e/kubebin/go.mod) into .cache/kube/<version>/, once.
#
# Where a cold build's time goes (2 cores): fetching the k8s.io/kubernetes module graph, then
# compiling ~2 000 packages; linking is seconds. Both binaries are built by ONE `go build`, so the
# packages they share are scheduled once and both links run in the same job graph; -trimpath,
# -ldflags "-s -w" and -gcflags=-dwarf=false cut compile and link work for debug information
# nobody reads. Progress (packages compiled so far, elapsed time) is printed every 20 s.
# Env: WEFT_CACHE_DIR (default <repo>/.cache), KUBE_BINS_OUT (overrides the output directory).
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
mod="$root/e2e/kubebin"
version=$(awk '$1=="require" && $2=="k8s.io/kubernetes" {print $3}' "$mod/go.mod")
out="${KUBE_BINS_OUT:-${WEFT_CACHE_DIR:-$root/.cache}/kube/$version}"
cmds=(kube-apiserver kube-controller-manager)

built() {
  local c
  for c in "${cmds[@]}"; do [[ -x "$out/$c" ]] || return 1; done
}
built && exit 0
mkdir -p "$out"
# Serialise concurrent runs (parallel make targets, several test sessions); re-check under the lock.
exec 9>"$out/.lock"
flock 9
built && exit 0

start=$SECONDS
say() { printf 'kube-bins: [%3dm%02ds] %s\n' $(((SECONDS - start) / 60)) $(((SECONDS - start) % 60)) "$*"; }
cd "$mod"
export GONOSUMDB=k8s.io/kubernetes GOFLAGS="-mod=mod -buildvcs=false" CGO_ENABLED=0
pkgs=()
for c in "${cmds[@]}"; do pkgs+=("k8s.io/kubernetes/cmd/$c"); done

say "building ${cmds[*]} $version into $out (first time only; about 10 minutes on 2 cores)"
say "step 1/3: download modules"
dl=$(mktemp)
if ! total=$(go list -deps "${pkgs[@]}" 2>"$dl" | wc -l) || grep -qv '^go: downloading' "$dl"; then
  cat "$dl" >&2
  rm -f "$dl"
  say "listing the packages failed"
  exit 1
fi
say "downloaded $(wc -l <"$dl") modules"
rm -f "$dl"
say "step 2/3: compile $total packages"

minor=$(echo "$version" | cut -d. -f2)
ldflags="-s -w"
for v in gitVersion=$version gitMajor=1 gitMinor=$minor gitTreeState=clean; do
  ldflags="$ldflags -X k8s.io/component-base/version.$v"
done
tmp=$(mktemp -d "$out/.build.XXXXXX")
ticker="" build=""
# errexit holds inside traps too: a failed kill (both already gone) must not turn success into exit 1.
trap 'kill $ticker $build 2>/dev/null || true; rm -rf "$tmp"' EXIT
# -v names each package as it is compiled (cached ones are not named): count them for progress.
progress="$tmp/progress"
: >"$progress"
(
  while sleep 20; do
    say "compiling: $(wc -l <"$progress") of at most $total packages"
  done
) &
ticker=$!
status=0
go build -v -trimpath -gcflags=all=-dwarf=false -ldflags "$ldflags" -o "$tmp/" "${pkgs[@]}" 2>"$tmp/build.err" >/dev/null &
build=$!
# go build -v writes package names to stderr, interleaved with any errors.
tail -n +1 -f --pid=$build "$tmp/build.err" 2>/dev/null | grep --line-buffered -v ' ' >>"$progress" || true
wait $build || status=$?
kill $ticker 2>/dev/null || true
wait $ticker 2>/dev/null || true
if ((status != 0)); then
  grep ' ' "$tmp/build.err" >&2 || cat "$tmp/build.err" >&2
  say "build failed (exit $status)"
  exit "$status"
fi
say "step 3/3: install"
for c in "${cmds[@]}"; do mv "$tmp/$c" "$out/$c"; done
say "kube binaries ready in $out"
