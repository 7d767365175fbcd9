// Package benchcpu reports the process's CPU time per benchmark iteration
// (user + system, every goroutine: client, proxy and backend when they run
// in one process). Loopback ping-pong benchmarks measure latency, which
// swings with the scheduler and the machine's other load; CPU time per
// request is what a per-request cost (a tap, a hook) adds. For benchmarks
// only.
package benchcpu

import (
	"syscall"
	"testing"
	"time"
)

// Start begins measuring; the returned func, called after the benchmark
// loop, reports "cpu-ns/op".
func Start(b *testing.B) (stop func()) {
	start := cpu()
	return func() {
		if b.N > 0 {
			b.ReportMetric(float64(cpu()-start)/float64(b.N), "cpu-ns/op")
		}
	}
}

func cpu() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
