package httpx

import (
	"context"
	"fmt"
	"net/netip"
	"strings"
)

// ClientIPs finds the address of the client behind reverse proxies. Each
// proxy appends the address it received the request from to the proxy header
// (X-Forwarded-For), so only the entries our own proxies wrote can be
// believed: the client writes whatever it likes to the left of them.
type ClientIPs struct {
	header  string
	trusted []netip.Prefix
}

// NewClientIPs reads the configuration: header is the proxy header (empty:
// no proxy, the socket's address is the client), trusted the addresses or
// CIDR ranges of our proxies. With a header and no trusted list, the peer
// that connects is taken to be the one proxy.
func NewClientIPs(header string, trusted []string) (*ClientIPs, error) {
	c := &ClientIPs{header: header}
	for _, t := range trusted {
		p, err := parsePrefix(strings.TrimSpace(t))
		if err != nil {
			return nil, fmt.Errorf("%q is not an IP address or CIDR range", t)
		}
		c.trusted = append(c.trusted, p)
	}
	return c, nil
}

func parsePrefix(s string) (netip.Prefix, error) {
	if strings.Contains(s, "/") {
		p, err := netip.ParsePrefix(s)
		return p.Masked(), err
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Prefix{}, err
	}
	a = a.Unmap()
	return netip.PrefixFrom(a, a.BitLen()), nil
}

// Header is the proxy header read, or "".
func (c *ClientIPs) Header() string { return c.header }

func (c *ClientIPs) isTrusted(a netip.Addr) bool {
	for _, p := range c.trusted {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// Resolve returns the client's address for a request that came from remote
// with the proxy header's values (every header line, in order). Walking the
// entries from the right, trusted proxies are skipped and the first other
// entry is the client; an entry that is not an IP address ends the walk at
// the last hop we could believe. A header sent by a peer that is not a
// trusted proxy (when a trusted list is configured) is ignored.
func (c *ClientIPs) Resolve(remote netip.Addr, values []string) netip.Addr {
	remote = remote.Unmap()
	if c.header == "" || len(values) == 0 || (len(c.trusted) > 0 && !c.isTrusted(remote)) {
		return remote
	}
	var entries []string
	for _, v := range values {
		entries = append(entries, strings.Split(v, ",")...)
	}
	believed := remote
	for i := len(entries) - 1; i >= 0; i-- {
		a, ok := parseHost(strings.TrimSpace(entries[i]))
		if !ok {
			return believed
		}
		if !c.isTrusted(a) {
			return a
		}
		believed = a
	}
	return believed
}

// parseHost reads an address as proxies write it: 192.0.2.1, 2001:db8::1,
// with or without a port ([2001:db8::1]:443, 192.0.2.1:5000).
func parseHost(s string) (netip.Addr, bool) {
	if a, err := netip.ParseAddr(s); err == nil && a.Zone() == "" {
		return a.Unmap(), true
	}
	if ap, err := netip.ParseAddrPort(s); err == nil && ap.Addr().Zone() == "" {
		return ap.Addr().Unmap(), true
	}
	return netip.Addr{}, false
}

type clientIPKey struct{}

// WithClientIP records the client's address in ctx (per-IP rate limits).
func WithClientIP(ctx context.Context, ip string) context.Context {
	return context.WithValue(ctx, clientIPKey{}, ip)
}

// ClientIP returns the client's address recorded in ctx, or "".
func ClientIP(ctx context.Context) string {
	s, _ := ctx.Value(clientIPKey{}).(string)
	return s
}
