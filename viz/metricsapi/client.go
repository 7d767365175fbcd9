package metricsapi

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
)

// Where the viz extension's Service lives.
const (
	Namespace   = "weft-viz"
	ServiceName = "weft-viz"
)

// ErrNotInstalled says the viz extension's Service is absent.
var ErrNotInstalled = errors.New("the viz extension is not installed (weft viz install | kubectl apply -f -)")

// Client queries the API through the API server's service proxy, which
// works wherever kubectl does.
type Client struct{ CS kubernetes.Interface }

// Get fetches path with params and decodes the JSON answer into out.
func (c Client) Get(ctx context.Context, path string, params map[string]string, out any) error {
	if _, err := c.CS.CoreV1().Services(Namespace).Get(ctx, ServiceName, metav1.GetOptions{}); err != nil {
		if apierrors.IsNotFound(err) {
			return ErrNotInstalled
		}
		return fmt.Errorf("find the viz service: %w", err)
	}
	body, err := c.CS.CoreV1().Services(Namespace).ProxyGet("http", ServiceName, strconv.Itoa(Port), path, params).DoRaw(ctx)
	if err != nil {
		var msg struct{ Error string }
		if json.Unmarshal(body, &msg) == nil && msg.Error != "" {
			return errors.New(msg.Error)
		}
		return fmt.Errorf("query the viz extension: %w", err)
	}
	if err := json.Unmarshal(body, out); err != nil {
		return fmt.Errorf("decode the viz answer: %w", err)
	}
	return nil
}
