// Package profile compiles a destination profile (routes, response classes,
// retry budget, traffic split) into the structures the HTTP layers consult
// per request, and holds the retry decisions both HTTP layers share:
//
//   - routes: the first route whose condition matches names the request
//     (rt_route); conditions are all / any / not / method / pathRegex, the
//     regex an RE2 expression matched against the whole path;
//   - response classes: the first class whose condition matches decides
//     whether a response is a failure; without one, Linkerd's default applies
//     (a proxy error, a 5xx or a gRPC failure status);
//   - retries: only routes marked isRetryable are retried (plus connect
//     failures of idempotent methods, which never reached the application),
//     only after a response classified as a failure, only with a request body
//     that fit the 64 KiB replay buffer, each retry withdrawn from the
//     profile's retry budget and preceded by a jittered back-off;
//   - the route timeout bounds the whole request, retries included;
//   - dstOverrides split traffic between authorities by weight.
//
// Nothing on the per-request path allocates except the replay buffer of a
// retryable request's body (pooled).
package profile
