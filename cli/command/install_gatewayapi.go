package command

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/spf13/cobra"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/client-go/kubernetes"

	"github.com/weftmesh/weft/manifests"
)

// renderCRDs renders --crds, and with --gateway-api the Gateway API CRDs
// that the cluster does not already have at GatewayAPIVersion or newer
// (those are left alone, with a note on stderr; --ignore-cluster renders
// them all).
func renderCRDs(cmd *cobra.Command, g *globals, fl *installFlags) ([]byte, error) {
	if !fl.gatewayAPI {
		return manifests.CRDs()
	}
	skip := map[string]bool{}
	if !fl.ignoreCluster {
		cs, err := g.client()
		if err != nil {
			return nil, fmt.Errorf("connect to the cluster to see which Gateway API CRDs exist (or pass --ignore-cluster): %w", err)
		}
		for _, name := range manifests.GatewayAPICRDNames {
			v, err := installedBundle(cmd.Context(), cs, name)
			if err != nil {
				return nil, err
			}
			if v != "" && manifests.NewerOrSameGatewayAPI(v) {
				skip[name] = true
				fmt.Fprintf(cmd.ErrOrStderr(), "CRD %s is already installed at %s; left alone\n", name, v)
			}
		}
	}
	return manifests.CRDsWithGatewayAPI(skip)
}

// installedBundle returns the bundle-version annotation of an installed CRD
// ("unknown" when it has none), or "" when it is not installed.
func installedBundle(ctx context.Context, cs kubernetes.Interface, name string) (string, error) {
	raw, err := cs.Discovery().RESTClient().Get().AbsPath("/apis/apiextensions.k8s.io/v1/customresourcedefinitions", name).DoRaw(ctx)
	if apierrors.IsNotFound(err) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("get CRD %s (or pass --ignore-cluster): %w", name, err)
	}
	var crd struct {
		Metadata struct {
			Annotations map[string]string `json:"annotations"`
		} `json:"metadata"`
	}
	if err := json.Unmarshal(raw, &crd); err != nil {
		return "", fmt.Errorf("decode CRD %s: %w", name, err)
	}
	if v := crd.Metadata.Annotations[manifests.GatewayAPIBundleAnnotation]; v != "" {
		return v, nil
	}
	return "unknown", nil
}
