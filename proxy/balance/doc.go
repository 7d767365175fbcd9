// Package balance picks one endpoint of a set per request (HTTP/1, HTTP/2)
// or per connection (TCP) with power-of-two-choices over peak-EWMA load, the
// algorithm of Linkerd's proxy (tower's PeakEwma + P2C):
//
//   - every endpoint keeps an RTT estimate, measured from a request's start
//     to its response's first byte. A sample above the estimate replaces it
//     (peak); otherwise est = est·e^(−Δt/τ) + rtt·(1 − e^(−Δt/τ)) with
//     τ = 10 s. Reading the cost decays the estimate toward zero the same way,
//     so an endpoint that has not been tried for a while is tried again;
//   - cost = estimate × (pending + 1); a new endpoint starts at 30 ms, and
//     while it has never answered and has nothing pending it costs 0, so an
//     added endpoint gets a request at once (tower would make it wait until
//     the others' estimates exceed the default);
//   - a pick draws two distinct endpoints at random among the ready ones and
//     takes the cheaper.
//
// Failure accrual (circuit breaking): after FailureThreshold consecutive
// failures an endpoint is ejected for a back-off (1 s doubling to 60 s, with
// jitter); when the back-off ends it is readmitted on probation: the next
// result decides (success closes the breaker, failure ejects it again for
// twice as long). The last ready endpoint is never ejected.
//
// The per-request handle is the Endpoint itself (target.Load): Begin when the
// request is sent, End at the first response byte or the failure. Neither
// allocates.
package balance
