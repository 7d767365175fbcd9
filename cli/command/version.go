package command

import (
	"context"
	"fmt"
	"sort"
	"strings"

	"github.com/spf13/cobra"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/weftmesh/weft/internal/version"
	"github.com/weftmesh/weft/manifests"
)

func versionCmd(g *globals) *cobra.Command {
	var clientOnly bool
	cmd := &cobra.Command{
		Use:   "version",
		Short: "Print the client and, when reachable, the control-plane version",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			out := cmd.OutOrStdout()
			fmt.Fprintf(out, "Client version: %s\n", version.Version)
			if clientOnly {
				return nil
			}
			fmt.Fprintf(out, "Server version: %s\n", serverVersion(cmd.Context(), g))
			return nil
		},
	}
	cmd.Flags().BoolVar(&clientOnly, "client", false, "print only the client version")
	return cmd
}

// serverVersion is the image tag the control-plane Deployments run, or
// "unavailable (reason)". Components on different versions (an upgrade in
// progress) are listed one by one.
func serverVersion(ctx context.Context, g *globals) string {
	ns := g.values.ControlPlaneNamespace
	cs, err := g.client()
	if err != nil {
		return "unavailable (" + oneLine(err) + ")"
	}
	versions, err := componentVersions(ctx, cs, ns)
	if err != nil {
		return "unavailable (" + oneLine(err) + ")"
	}
	if len(versions) == 0 {
		return "unavailable (no weft control plane in namespace " + ns + ")"
	}
	distinct := map[string]bool{}
	for _, v := range versions {
		distinct[v] = true
	}
	if len(distinct) == 1 {
		for v := range distinct {
			return v
		}
	}
	var parts []string
	for comp, v := range versions {
		parts = append(parts, comp+"="+v)
	}
	sort.Strings(parts)
	return strings.Join(parts, ", ")
}

// componentVersions maps each control-plane component in ns to its
// container's image tag.
func componentVersions(ctx context.Context, cs kubernetes.Interface, ns string) (map[string]string, error) {
	list, err := cs.AppsV1().Deployments(ns).List(ctx, metav1.ListOptions{
		LabelSelector: manifests.LabelControlPlaneNS + "=" + ns + "," + manifests.LabelComponent,
	})
	if err != nil {
		return nil, fmt.Errorf("list control-plane Deployments in %s: %w", ns, err)
	}
	out := map[string]string{}
	for _, d := range list.Items {
		comp := d.Labels[manifests.LabelComponent]
		for _, c := range d.Spec.Template.Spec.Containers {
			if c.Name == comp {
				out[comp] = imageTag(c.Image)
			}
		}
	}
	return out, nil
}

func imageTag(image string) string {
	if i := strings.LastIndex(image, ":"); i > strings.LastIndex(image, "/") {
		return image[i+1:]
	}
	return "latest"
}

func oneLine(err error) string {
	return strings.ReplaceAll(err.Error(), "\n", " ")
}
