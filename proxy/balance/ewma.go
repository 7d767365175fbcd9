package balance

import "math"

// peakEWMA is the peak-EWMA update of an RTT estimate: a sample above est
// replaces it; otherwise the estimate moves toward the sample with weight
// 1 − e^(−Δt/τ), where Δt = now − stamp (ns) and tau is τ in ns. A zero rtt
// is how reading the cost decays the estimate.
func peakEWMA(est float64, stamp, now int64, rtt, tau float64) float64 {
	if rtt > est {
		return rtt
	}
	dt := float64(now - stamp)
	if dt < 0 {
		dt = 0
	}
	decay := math.Exp(-dt / tau)
	return est*decay + rtt*(1-decay)
}
