#!/usr/bin/env bash
# Regenerates the Go code for every .proto under api/. The generators are
# installed at pinned versions into .cache/bin; protoc comes from Debian
# (protobuf-compiler, installed by e2e/scripts/deps.sh).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
bin="$root/.cache/bin"
mkdir -p "$bin"
[[ -x "$bin/protoc-gen-go" ]] || GOBIN="$bin" go install google.golang.org/protobuf/cmd/protoc-gen-go@v1.36.12
[[ -x "$bin/protoc-gen-go-grpc" ]] || GOBIN="$bin" go install google.golang.org/grpc/cmd/protoc-gen-go-grpc@v1.6.0
cd "$root/api"
for proto in $(find . -name '*.proto' | sort); do
  PATH="$bin:$PATH" protoc -I . -I /usr/include \
    --go_out=. --go_opt=paths=source_relative \
    --go-grpc_out=. --go-grpc_opt=paths=source_relative \
    "$proto"
done
