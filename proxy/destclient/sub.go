package destclient

import (
	"context"
	"errors"
	"io"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	destinationv1 "github.com/weftmesh/weft/api/destination/v1"
	"github.com/weftmesh/weft/proxy/balance"
	"github.com/weftmesh/weft/proxy/profile"
)

// Endpoint states of a subscription.
const (
	statePending uint32 = iota // no answer yet
	stateKnown                 // the destination knows the target (it may have no endpoints)
	stateUnknown               // the destination does not know it: use the fallback
)

// sub is one target's pair of streams and what they last said. It outlives
// disconnections: endpoints and profile stay until the stream says otherwise.
type sub struct {
	c    *Client
	path string
	bal  *balance.Balancer

	state     atomic.Uint32 // endpoints: statePending, stateKnown, stateUnknown
	profState atomic.Uint32 // profile: statePending, stateKnown
	prof      atomic.Pointer[profile.Profile]
	lastUsed  atomic.Int64 // unix ns, coarse
	created   time.Time    // waits for a first answer end FailFastTimeout after this

	mu      sync.Mutex
	changed chan struct{} // closed and replaced on every change

	ctx    context.Context
	cancel context.CancelFunc

	// Counters for tests and debugging.
	connects atomic.Int64 // Get streams opened
	updates  atomic.Int64 // Get messages applied
}

func newSub(c *Client, path string) *sub {
	ctx, cancel := context.WithCancel(c.ctx)
	s := &sub{c: c, path: path, bal: balance.New(c.cfg.Balance), changed: make(chan struct{}), ctx: ctx, cancel: cancel, created: time.Now()}
	s.touch()
	return s
}

func (s *sub) start() {
	s.c.wg.Add(2)
	go s.run(s.watchEndpoints)
	go s.run(s.watchProfile)
}

func (s *sub) stop() { s.cancel() }

func (s *sub) touch() {
	now := time.Now().UnixNano()
	if now-s.lastUsed.Load() > int64(100*time.Millisecond) {
		s.lastUsed.Store(now)
	}
}

func (s *sub) idleSince(t int64) bool { return s.lastUsed.Load() < t }

// wait returns a channel closed at the next change.
func (s *sub) wait() <-chan struct{} {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.changed
}

func (s *sub) notify() {
	s.mu.Lock()
	close(s.changed)
	s.changed = make(chan struct{})
	s.mu.Unlock()
}

// errFinal ends a watch loop: the destination rejected the target.
var errFinal = errors.New("target rejected")

// run keeps one stream going: reconnect after a jittered exponential
// back-off, reset once the stream has delivered a message.
func (s *sub) run(watch func(sh *streamHealth) (delivered bool, err error)) {
	defer s.c.wg.Done()
	log := s.c.cfg.Logger
	d := s.c.cfg.BackoffMin
	sh := &streamHealth{h: &s.c.health}
	defer sh.delivered() // a stopped stream no longer counts as failing
	for s.ctx.Err() == nil {
		delivered, err := watch(sh)
		if errors.Is(err, errFinal) || s.ctx.Err() != nil {
			return
		}
		sh.failed()
		if delivered {
			d = s.c.cfg.BackoffMin
		}
		wait := d/2 + rand.N(d/2+1)
		log.Debug("destination stream ended; reconnecting", "target", s.path, "err", err, "backoff", wait)
		t := time.NewTimer(wait)
		select {
		case <-s.ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
		d = min(d*2, s.c.cfg.BackoffMax)
	}
}

func (s *sub) request() *destinationv1.GetDestination {
	return &destinationv1.GetDestination{Path: s.path, ContextToken: s.c.cfg.ContextToken}
}

// rejected reports whether the destination refused the target for good.
func rejected(err error) bool {
	switch status.Code(err) {
	case codes.InvalidArgument, codes.NotFound, codes.Unimplemented:
		return true
	}
	return false
}

// watchEndpoints runs one Get stream. Its first message is a full snapshot
// and replaces what was known; later ones are deltas.
func (s *sub) watchEndpoints(sh *streamHealth) (bool, error) {
	stream, err := s.c.api.Get(s.ctx, s.request())
	if err != nil {
		return false, err
	}
	s.connects.Add(1)
	first := true
	for {
		u, err := stream.Recv()
		if err != nil {
			if rejected(err) {
				s.c.cfg.Logger.Debug("destination rejected target; falling back", "target", s.path, "err", err)
				s.state.Store(stateUnknown)
				s.bal.Replace(nil)
				s.notify()
				return !first, errFinal
			}
			if err == io.EOF {
				err = errors.New("stream closed by the server")
			}
			return !first, err
		}
		sh.delivered()
		s.apply(u, first)
		first = false
	}
}

func (s *sub) apply(u *destinationv1.Update, snapshot bool) {
	switch x := u.GetUpdate().(type) {
	case *destinationv1.Update_Add:
		eps := endpoints(s.path, x.Add)
		if snapshot {
			s.bal.Replace(eps)
		} else {
			s.bal.Add(eps...)
		}
		s.state.Store(stateKnown)
	case *destinationv1.Update_Remove:
		for _, a := range x.Remove.GetAddrs() {
			if ap, ok := addrPort(a); ok {
				s.bal.Remove(ap)
			}
		}
		s.state.Store(stateKnown)
	case *destinationv1.Update_NoEndpoints:
		s.bal.Replace(nil)
		if x.NoEndpoints.GetExists() {
			s.state.Store(stateKnown)
		} else {
			s.state.Store(stateUnknown)
		}
	default:
		return
	}
	s.updates.Add(1)
	s.notify()
}

// watchProfile runs one GetProfile stream; every message is a whole profile.
// A profile that does not compile is logged and the previous one kept.
func (s *sub) watchProfile(sh *streamHealth) (bool, error) {
	stream, err := s.c.api.GetProfile(s.ctx, s.request())
	if err != nil {
		return false, err
	}
	delivered := false
	for {
		p, err := stream.Recv()
		if err != nil {
			if rejected(err) {
				s.prof.Store(nil)
				s.profState.Store(stateKnown)
				s.notify()
				return delivered, errFinal
			}
			return delivered, err
		}
		delivered = true
		sh.delivered()
		cp, err := profile.Compile(p, profile.Options{})
		if err != nil {
			s.c.cfg.Logger.Warn("destination profile rejected; keeping the previous one", "target", s.path, "err", err)
		} else {
			s.prof.Store(cp)
		}
		s.profState.Store(stateKnown)
		s.notify()
	}
}
