package iptables

import (
	"strings"
	"testing"
)

// FuzzParsePortRanges checks that accepted input always yields valid, renderable ranges.
func FuzzParsePortRanges(f *testing.F) {
	for _, s := range []string{"", "80", "1-65535", "22,8000-8100", " 1 , 2 ", "0", "9-1", "a-b", ",,,"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		rs, err := ParsePortRanges(s)
		if err != nil {
			return
		}
		for _, r := range rs {
			if r.First == 0 || r.Last < r.First {
				t.Fatalf("%q: invalid range %+v accepted", s, r)
			}
		}
		for _, chunk := range multiport(rs) {
			if strings.ContainsAny(chunk, " \n\"") {
				t.Fatalf("%q: unsafe multiport argument %q", s, chunk)
			}
		}
	})
}
