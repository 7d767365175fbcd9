// Package env reads the demo's configuration defaults from environment variables, so that every
// flag of a demo binary can also be set by the Deployment's env (flags win over env).
package env

import (
	"fmt"
	"os"
	"strconv"
	"time"
)

// String returns $name, or def when the variable is unset or empty.
func String(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}

// Float returns $name parsed as a float64, or def when unset; a malformed value is an error.
func Float(name string, def float64) (float64, error) {
	v := os.Getenv(name)
	if v == "" {
		return def, nil
	}
	f, err := strconv.ParseFloat(v, 64)
	if err != nil {
		return 0, fmt.Errorf("env %s=%q: want a number: %w", name, v, err)
	}
	return f, nil
}

// Duration returns $name parsed with time.ParseDuration ("200ms", "1m"), or def when unset.
func Duration(name string, def time.Duration) (time.Duration, error) {
	v := os.Getenv(name)
	if v == "" {
		return def, nil
	}
	d, err := time.ParseDuration(v)
	if err != nil {
		return 0, fmt.Errorf("env %s=%q: want a duration such as 200ms: %w", name, v, err)
	}
	return d, nil
}
