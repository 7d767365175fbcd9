// Package routes is weft's GAMMA route controller. It watches HTTPRoute and
// GRPCRoute objects whose parentRefs name a Service (`group: ""`,
// `kind: Service`), validates and compiles them into proxy/httproute
// RouteSpecs, writes status.parents[] (Accepted, ResolvedRefs) under weft's
// controllerName, and serves each Service's compiled routes to outbound
// proxies through Watch (the gRPC Routes API in server.go).
//
// A route in the Service's namespace is a producer route and applies to every
// client; a route in another namespace is a consumer route and applies only to
// clients in that namespace, replacing the producer routes for them
// (GEP-1294). An HTTPRoute on a Service takes precedence over the Service's
// ServiceProfile routes.
package routes
