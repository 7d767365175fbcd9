package record

import (
	"errors"
	"testing"
)

func TestFailed(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		h    HTTP
		want bool
	}{
		{"200", HTTP{StatusCode: 200, GRPCStatus: -1}, false},
		{"404", HTTP{StatusCode: 404, GRPCStatus: -1}, false},
		{"503", HTTP{StatusCode: 503, GRPCStatus: -1}, true},
		{"no response", HTTP{GRPCStatus: -1}, true},
		{"proxy error", HTTP{StatusCode: 200, GRPCStatus: -1, Err: errors.New("x")}, true},
		{"grpc ok", HTTP{StatusCode: 200, GRPCStatus: 0}, false},
		{"grpc not found", HTTP{StatusCode: 200, GRPCStatus: 5}, false},
		{"grpc unavailable", HTTP{StatusCode: 200, GRPCStatus: 14}, true},
		{"grpc permission denied", HTTP{StatusCode: 200, GRPCStatus: 7}, true},
		{"grpc out of range code", HTTP{StatusCode: 200, GRPCStatus: 99}, false},
	}
	for _, tt := range tests {
		if got := tt.h.Failed(); got != tt.want {
			t.Errorf("%s: Failed() = %v, want %v", tt.name, got, tt.want)
		}
	}
	if Inbound.String() != "inbound" || Outbound.String() != "outbound" {
		t.Fatal("direction labels")
	}
}
