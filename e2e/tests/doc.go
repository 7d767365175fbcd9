// Package tests is weft's end-to-end suite (build tag e2e): it runs against the real local
// cluster (e2e/cluster), starting it if needed, and asserts what a user of the cluster sees.
// Run it with `make e2e` or `go test -tags e2e ./e2e/tests/...`; see docs/demo.md.
package tests
