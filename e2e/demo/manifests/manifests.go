// Package manifests embeds the demo application's Kubernetes YAML.
package manifests

import _ "embed"

// Demo is demo.yaml: namespace demo with web, books, authors and traffic.
//
//go:embed demo.yaml
var Demo []byte

// BooksProfile is books-profile.yaml: the books service's ServiceProfile (applied after the CRDs).
//
//go:embed books-profile.yaml
var BooksProfile []byte
