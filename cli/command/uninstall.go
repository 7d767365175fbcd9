package command

import (
	"github.com/spf13/cobra"

	"github.com/weftmesh/weft/manifests"
)

func uninstallCmd(g *globals) *cobra.Command {
	var keepCRDs bool
	cmd := &cobra.Command{
		Use:   "uninstall",
		Short: "Print what to delete to remove weft, for kubectl delete",
		Long: `Print the objects that make up the weft install in --weft-namespace as YAML
stubs. Nothing is deleted by weft itself:

  weft uninstall | kubectl delete -f -

The webhook goes first, then the cluster-wide RBAC, the control-plane
namespace (with everything in it) and the CRDs (which deletes every
ServiceProfile; --keep-crds leaves them). Meshed pods keep their proxies until
they are restarted.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			out, err := manifests.Uninstall(g.values, !keepCRDs)
			if err != nil {
				return err
			}
			_, err = cmd.OutOrStdout().Write(out)
			return err
		},
	}
	cmd.Flags().BoolVar(&keepCRDs, "keep-crds", false, "do not delete the CRDs (and so the ServiceProfiles)")
	return cmd
}
