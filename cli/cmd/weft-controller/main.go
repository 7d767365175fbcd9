// Command weft-controller is weft's control plane: one binary whose
// subcommands run the identity, destination and injector services and the
// viz extension.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/weftmesh/weft/internal/version"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	root := &cobra.Command{
		Use:           "weft-controller",
		Short:         "weft control plane",
		Version:       version.Version,
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.AddCommand(identityCmd(), destinationCmd(), injectorCmd(), vizCmd())
	if err := root.ExecuteContext(ctx); err != nil {
		fmt.Fprintln(os.Stderr, "weft-controller:", err)
		os.Exit(1)
	}
}
