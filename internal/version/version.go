// Package version holds the build version of every weft binary.
package version

// Version is set at link time with -ldflags "-X github.com/weftmesh/weft/internal/version.Version=...".
var Version = "dev"
