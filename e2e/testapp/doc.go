// Package testapp holds the subcommands of weft-testapp (image weft/testapp), the one
// multipurpose program the end-to-end tests run in pods: servers (http, tcp-echo, webhook),
// clients (get, tcp, token-review) and probes of the runtime (whoami, record-lifecycle).
package testapp
