#!/usr/bin/env bash
# Regenerates the demo's gRPC Go code from authors.proto. The protoc plugins are installed
# (pinned) into the gitignored .cache/bin; protoc itself comes from Debian (protobuf-compiler).
set -euo pipefail
root=$(cd "$(dirname "$0")/../../.." && pwd)
bin="$root/.cache/bin"
mkdir -p "$bin"
[ -x "$bin/protoc-gen-go" ] || GOBIN="$bin" go install google.golang.org/protobuf/cmd/protoc-gen-go@v1.36.12
[ -x "$bin/protoc-gen-go-grpc" ] || GOBIN="$bin" go install google.golang.org/grpc/cmd/protoc-gen-go-grpc@v1.5.1
cd "$root/e2e/demo/api"
mkdir -p authorspb
PATH="$bin:$PATH" protoc -I . \
  --go_out=authorspb --go_opt=paths=source_relative \
  --go-grpc_out=authorspb --go-grpc_opt=paths=source_relative \
  authors.proto
