package destclient

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"time"

	"github.com/weftmesh/weft/proxy/profile"
	"github.com/weftmesh/weft/proxy/proxyerr"
	"github.com/weftmesh/weft/proxy/target"
)

var errNoEndpoints = errors.New("destination has no endpoints")

// Resolve implements discovery.Resolver: ResolveContext without a context.
func (c *Client) Resolve(authority string, orig netip.AddrPort) (target.Endpoint, error) {
	return c.ResolveContext(context.Background(), authority, orig)
}

// ResolveContext picks the endpoint for one request (or TCP connection):
//
//   - the target is the authority when its host is under a configured
//     suffix, else the original destination address; with neither, or when
//     the destination does not know the target, Fallback resolves it;
//   - a profile's dstOverrides split picks the authority first;
//   - with endpoints, the balancer picks one (P2C over peak-EWMA); the
//     returned endpoint's Load must be ended by the caller (Begin/End);
//   - without any (NoEndpoints, or no answer yet), it waits up to
//     FailFastTimeout (or ctx) for one; then fails with proxyerr.NoEndpoints,
//     except that a target the control plane never answered for goes to the
//     fallback (pass-through), so a control-plane outage at start-up does
//     not fail traffic that would work without it.
//
// It does not allocate once a target is subscribed and has endpoints.
func (c *Client) ResolveContext(ctx context.Context, authority string, orig netip.AddrPort) (target.Endpoint, error) {
	s := c.lookup(authority, orig)
	if s == nil {
		return c.cfg.Fallback.Resolve(authority, orig)
	}
	return c.resolve(ctx, s, authority, orig)
}

// RouteProfile implements target.Profiles: Profile and ResolveContext with
// one lookup of the target.
func (c *Client) RouteProfile(ctx context.Context, authority string, orig netip.AddrPort) (*profile.Profile, target.Endpoint, error) {
	s := c.lookup(authority, orig)
	if s == nil {
		ep, err := c.cfg.Fallback.Resolve(authority, orig)
		return nil, ep, err
	}
	prof := c.profile(ctx, s)
	ep, err := c.resolve(ctx, s, authority, orig)
	return prof, ep, err
}

// resolve is ResolveContext for the subscription s.
func (c *Client) resolve(ctx context.Context, s *sub, authority string, orig netip.AddrPort) (target.Endpoint, error) {
	s.touch()
	if p := s.prof.Load(); p != nil && p.Split != nil {
		if o := c.override(p.Split.Pick(), s); o != nil {
			s = o
			s.touch()
		}
	}
	if s.state.Load() == stateKnown {
		if ep, ok := s.bal.Pick(); ok {
			return ep, nil
		}
	}
	return c.await(ctx, s, authority, orig)
}

// override returns the subscription of a split's chosen authority; nil when
// it is the target itself or cannot be subscribed.
func (c *Client) override(authority string, self *sub) *sub {
	c.mu.RLock()
	o, ok := c.byName[authority]
	c.mu.RUnlock()
	if ok {
		if o == self {
			return nil
		}
		return o
	}
	return c.subscribe(authority, netip.AddrPort{}, authority)
}

// await is the slow path: wait for endpoints (or for the destination to
// say it does not know the target). A request waits at most FailFastTimeout;
// while the target has never been answered for, waits end FailFastTimeout
// after the subscription started, so once the control plane has been
// silent that long requests go to the fallback without waiting.
func (c *Client) await(ctx context.Context, s *sub, authority string, orig netip.AddrPort) (target.Endpoint, error) {
	limit := time.Now().Add(c.cfg.FailFastTimeout)
	t := time.NewTimer(c.cfg.FailFastTimeout)
	defer t.Stop()
	for {
		ch := s.wait()
		state := s.state.Load()
		switch state {
		case stateUnknown:
			return c.cfg.Fallback.Resolve(authority, orig)
		case stateKnown:
			if ep, ok := s.bal.Pick(); ok {
				return ep, nil
			}
		}
		d := time.Until(limit)
		if state == statePending {
			d = min(d, time.Until(s.created.Add(c.cfg.FailFastTimeout)))
		}
		if d <= 0 {
			if state == statePending {
				c.cfg.Logger.Debug("destination did not answer in time; falling back", "target", s.path)
				return c.cfg.Fallback.Resolve(authority, orig)
			}
			return target.Endpoint{}, proxyerr.New(proxyerr.NoEndpoints, fmt.Errorf("%s: %w after %v", s.path, errNoEndpoints, c.cfg.FailFastTimeout))
		}
		t.Reset(d)
		select {
		case <-ch:
		case <-t.C:
		case <-ctx.Done():
			return target.Endpoint{}, proxyerr.New(proxyerr.KindOf(ctx.Err()), ctx.Err())
		}
	}
}

// Profile returns the compiled profile for a request's target, nil when
// there is none (no subscription, the destination does not know the target,
// or no answer within FailFastTimeout of the subscription's start). A
// target's first request waits for the first profile message. The fast
// path does not allocate.
func (c *Client) Profile(ctx context.Context, authority string, orig netip.AddrPort) *profile.Profile {
	s := c.lookup(authority, orig)
	if s == nil {
		return nil
	}
	return c.profile(ctx, s)
}

// profile is Profile for the subscription s.
func (c *Client) profile(ctx context.Context, s *sub) *profile.Profile {
	s.touch()
	if s.profState.Load() != statePending {
		return s.prof.Load()
	}
	d := time.Until(s.created.Add(c.cfg.FailFastTimeout))
	if d <= 0 {
		return nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	for {
		ch := s.wait()
		if s.profState.Load() != statePending {
			return s.prof.Load()
		}
		select {
		case <-ch:
		case <-t.C:
			return nil
		case <-ctx.Done():
			return nil
		}
	}
}
