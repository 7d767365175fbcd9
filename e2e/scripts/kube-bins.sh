#!/usr/bin/env bash
# Builds kube-apiserver and kube-controller-manager from k8s.io/kubernetes
# (version pinned in e2e/kubebin/go.mod) into .cache/kube/<version>/, once.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
mod="$root/e2e/kubebin"
version=$(awk '$1=="require" && $2=="k8s.io/kubernetes" {print $3}' "$mod/go.mod")
out="${WEFT_CACHE_DIR:-$root/.cache}/kube/$version"
if [[ -x "$out/kube-apiserver" && -x "$out/kube-controller-manager" ]]; then
  exit 0
fi
mkdir -p "$out"
# Serialise concurrent runs (parallel make targets, several test sessions); re-check under the lock.
exec 9>"$out/.lock"
flock 9
if [[ -x "$out/kube-apiserver" && -x "$out/kube-controller-manager" ]]; then
  exit 0
fi
echo "building kube-apiserver and kube-controller-manager $version (first time: several minutes)"
cd "$mod"
export GONOSUMDB=k8s.io/kubernetes GOFLAGS=-mod=mod CGO_ENABLED=0
minor=$(echo "$version" | cut -d. -f2)
ldflags="-s -w"
for v in gitVersion=$version gitMajor=1 gitMinor=$minor gitTreeState=clean; do
  ldflags="$ldflags -X k8s.io/component-base/version.$v"
done
for cmd in kube-apiserver kube-controller-manager; do
  go build -trimpath -ldflags "$ldflags" -o "$out/$cmd.tmp" "k8s.io/kubernetes/cmd/$cmd"
  mv "$out/$cmd.tmp" "$out/$cmd"
done
echo "kube binaries ready in $out"
