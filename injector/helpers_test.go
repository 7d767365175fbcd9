package injector

import (
	"io"
	"log/slog"

	"k8s.io/apimachinery/pkg/runtime"
)

func discardLogger() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

func runtimeRaw(b []byte) runtime.RawExtension { return runtime.RawExtension{Raw: b} }
