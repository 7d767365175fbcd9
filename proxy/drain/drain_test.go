package drain

import (
	"context"
	"net"
	"testing"
	"time"
)

func TestWaitQuiet(t *testing.T) {
	tr := New()
	a, b := net.Pipe()
	defer b.Close()
	tr.Add(a)
	tr.Start()
	if !tr.Draining() {
		t.Fatal("not draining")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if err := tr.Wait(ctx, 10*time.Millisecond); err == nil {
		t.Fatal("drained with an open connection")
	}
	tr.Done(a)
	ctx2, cancel2 := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel2()
	if err := tr.Wait(ctx2, 20*time.Millisecond); err != nil {
		t.Fatalf("not drained: %v", err)
	}
}

func TestCloseAll(t *testing.T) {
	tr := New()
	a, b := net.Pipe()
	tr.Add(a)
	if n := tr.CloseAll(); n != 1 {
		t.Fatalf("closed %d", n)
	}
	if _, err := b.Write([]byte("x")); err == nil {
		t.Fatal("peer still open")
	}
}
