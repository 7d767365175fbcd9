package destclient

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/backoff"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/keepalive"

	destinationv1 "github.com/weftmesh/weft/api/destination/v1"
)

// Client subscribes to the destination service. It is safe for concurrent
// use; Close ends every subscription.
type Client struct {
	cfg  Config
	conn *grpc.ClientConn
	api  destinationv1.DestinationClient

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
	health health

	mu sync.RWMutex
	// byName maps authorities as requests spell them (and normalized names)
	// to their subscription; a nil value caches "not a name: look up by
	// address".
	byName map[string]*sub
	byAddr map[netip.AddrPort]*sub
	subs   int
}

// maxAliases bounds the raw-authority cache.
const maxAliases = 16384

// New dials (lazily) the destination service and starts the idle reaper.
func New(cfg Config) (*Client, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	opts := []grpc.DialOption{
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithKeepaliveParams(keepalive.ClientParameters{Time: 30 * time.Second, Timeout: 10 * time.Second, PermitWithoutStream: true}),
		grpc.WithConnectParams(grpc.ConnectParams{
			Backoff:           backoff.Config{BaseDelay: cfg.BackoffMin, Multiplier: 1.6, Jitter: 0.2, MaxDelay: cfg.BackoffMax},
			MinConnectTimeout: 5 * time.Second,
		}),
	}
	opts = append(opts, cfg.DialOptions...)
	conn, err := grpc.NewClient(cfg.Addr, opts...)
	if err != nil {
		return nil, fmt.Errorf("destination client %s: %w", cfg.Addr, err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	c := &Client{
		cfg: cfg, conn: conn, api: destinationv1.NewDestinationClient(conn),
		ctx: ctx, cancel: cancel,
		byName: map[string]*sub{}, byAddr: map[netip.AddrPort]*sub{},
	}
	c.wg.Add(1)
	go c.reap()
	return c, nil
}

// Close ends every subscription and the connection.
func (c *Client) Close() error {
	c.cancel()
	c.wg.Wait()
	return c.conn.Close()
}

// Subscriptions is the number of live subscriptions.
func (c *Client) Subscriptions() int {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return c.subs
}

// lookup returns the subscription for a request, creating it on first use;
// nil means the target goes to the fallback resolver. The fast path (a
// known authority or address) does not allocate.
func (c *Client) lookup(authority string, orig netip.AddrPort) *sub {
	if authority != "" {
		c.mu.RLock()
		s, ok := c.byName[authority]
		c.mu.RUnlock()
		if ok && s != nil {
			return s
		}
		if !ok {
			if s, named := c.lookupName(authority, orig); named {
				return s
			}
		}
	}
	if !orig.IsValid() {
		return nil
	}
	orig = netip.AddrPortFrom(orig.Addr().Unmap(), orig.Port())
	c.mu.RLock()
	s := c.byAddr[orig]
	c.mu.RUnlock()
	if s != nil {
		return s
	}
	return c.subscribe(orig.String(), orig, "")
}

// lookupName is the slow path for an authority seen for the first time: a
// name under one of the suffixes gets (or shares) a subscription by its
// normalized name; anything else is cached as "by address".
func (c *Client) lookupName(authority string, orig netip.AddrPort) (*sub, bool) {
	raw := strings.Clone(authority)
	name, ok := c.normalize(raw, orig)
	if !ok {
		c.alias(raw, nil)
		return nil, false
	}
	s := c.subscribe(name, netip.AddrPort{}, name)
	if s != nil && raw != name {
		c.alias(raw, s)
	}
	return s, s != nil
}

func (c *Client) alias(raw string, s *sub) {
	c.mu.Lock()
	if len(c.byName) < maxAliases {
		if _, exists := c.byName[raw]; !exists {
			c.byName[raw] = s
		}
	}
	c.mu.Unlock()
}

// normalize lowercases a host[:port] authority, drops a trailing dot, adds
// the port (the original destination's, else 80) and reports whether the
// host falls under a configured suffix.
func (c *Client) normalize(authority string, orig netip.AddrPort) (string, bool) {
	host, port, err := net.SplitHostPort(authority)
	if err != nil {
		host, port = authority, ""
	}
	host = strings.TrimSuffix(strings.ToLower(host), ".")
	if host == "" {
		return "", false
	}
	if _, err := netip.ParseAddr(host); err == nil {
		return "", false
	}
	under := false
	for _, sfx := range c.cfg.Suffixes {
		sfx = strings.Trim(strings.ToLower(sfx), ".")
		if host == sfx || strings.HasSuffix(host, "."+sfx) {
			under = true
			break
		}
	}
	if !under {
		return "", false
	}
	if port == "" {
		port = "80"
		if orig.IsValid() {
			port = strconv.Itoa(int(orig.Port()))
		}
	}
	if p, err := strconv.ParseUint(port, 10, 16); err != nil || p == 0 {
		return "", false
	}
	return host + ":" + port, true
}

// subscribe returns the subscription for path (a name, or an address when
// addr is valid), starting it if needed; nil when the cap is reached.
func (c *Client) subscribe(path string, addr netip.AddrPort, name string) *sub {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.ctx.Err() != nil {
		return nil
	}
	if addr.IsValid() {
		if s := c.byAddr[addr]; s != nil {
			return s
		}
	} else if s := c.byName[name]; s != nil {
		return s
	}
	if c.subs >= c.cfg.MaxSubscriptions {
		return nil
	}
	s := newSub(c, path)
	if addr.IsValid() {
		c.byAddr[addr] = s
	} else {
		c.byName[name] = s
	}
	c.subs++
	s.start()
	return s
}

// reap ends subscriptions unused for IdleTimeout.
func (c *Client) reap() {
	defer c.wg.Done()
	every := max(c.cfg.IdleTimeout/4, 10*time.Millisecond)
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-c.ctx.Done():
			return
		case <-t.C:
		}
		c.reapIdle(time.Now().Add(-c.cfg.IdleTimeout).UnixNano())
	}
}

// reapIdle stops the subscriptions last used before idle (unix ns) and
// forgets every name pointing at them.
func (c *Client) reapIdle(idle int64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	gone := map[*sub]bool{}
	for k, s := range c.byAddr {
		if s.idleSince(idle) {
			gone[s] = true
			delete(c.byAddr, k)
		}
	}
	for _, s := range c.byName {
		if s != nil && s.idleSince(idle) {
			gone[s] = true
		}
	}
	for k, s := range c.byName {
		if s != nil && gone[s] {
			delete(c.byName, k)
		}
	}
	for s := range gone {
		s.stop()
		c.subs--
	}
}
