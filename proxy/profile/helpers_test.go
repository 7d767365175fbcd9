package profile

import (
	"sync/atomic"
	"time"

	"google.golang.org/protobuf/types/known/durationpb"

	destinationv1 "github.com/weftmesh/weft/api/destination/v1"
)

type fakeClock struct{ ns atomic.Int64 }

func (c *fakeClock) now() int64              { return c.ns.Load() }
func (c *fakeClock) advance(d time.Duration) { c.ns.Add(int64(d)) }

func path(re string) *destinationv1.RequestMatch {
	return &destinationv1.RequestMatch{Match: &destinationv1.RequestMatch_PathRegex{PathRegex: re}}
}

func method(m string) *destinationv1.RequestMatch {
	return &destinationv1.RequestMatch{Match: &destinationv1.RequestMatch_Method{Method: m}}
}

func all(ms ...*destinationv1.RequestMatch) *destinationv1.RequestMatch {
	return &destinationv1.RequestMatch{Match: &destinationv1.RequestMatch_All{All: &destinationv1.RequestMatch_Seq{Matches: ms}}}
}

func anyOf(ms ...*destinationv1.RequestMatch) *destinationv1.RequestMatch {
	return &destinationv1.RequestMatch{Match: &destinationv1.RequestMatch_Any{Any: &destinationv1.RequestMatch_Seq{Matches: ms}}}
}

func not(m *destinationv1.RequestMatch) *destinationv1.RequestMatch {
	return &destinationv1.RequestMatch{Match: &destinationv1.RequestMatch_Not{Not: m}}
}

func status(lo, hi uint32) *destinationv1.ResponseMatch {
	return &destinationv1.ResponseMatch{Match: &destinationv1.ResponseMatch_Status{Status: &destinationv1.HttpStatusRange{Min: lo, Max: hi}}}
}

func rnot(m *destinationv1.ResponseMatch) *destinationv1.ResponseMatch {
	return &destinationv1.ResponseMatch{Match: &destinationv1.ResponseMatch_Not{Not: m}}
}

func rany(ms ...*destinationv1.ResponseMatch) *destinationv1.ResponseMatch {
	return &destinationv1.ResponseMatch{Match: &destinationv1.ResponseMatch_Any{Any: &destinationv1.ResponseMatch_Seq{Matches: ms}}}
}

func rall(ms ...*destinationv1.ResponseMatch) *destinationv1.ResponseMatch {
	return &destinationv1.ResponseMatch{Match: &destinationv1.ResponseMatch_All{All: &destinationv1.ResponseMatch_Seq{Matches: ms}}}
}

func route(name string, cond *destinationv1.RequestMatch, retryable bool, timeout time.Duration, classes ...*destinationv1.ResponseClass) *destinationv1.Route {
	r := &destinationv1.Route{Name: name, Condition: cond, IsRetryable: retryable, ResponseClasses: classes}
	if timeout > 0 {
		r.Timeout = durationpb.New(timeout)
	}
	return r
}

func durationpb1s() *durationpb.Duration { return durationpb.New(time.Second) }
