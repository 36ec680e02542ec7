// Package safeurl keeps URLs that users give (audio to transcribe, push
// endpoints) from pointing the server, or a service acting for it, at
// internal hosts: loopback, link-local (cloud metadata), private and other
// non-public addresses.
package safeurl

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"strings"
	"syscall"
	"time"
)

// ErrInternal is returned for a URL or address that is not public.
var ErrInternal = errors.New("names a host that is not public (loopback, link-local or private)")

// cgnat is the carrier-grade NAT range (RFC 6598), private in practice.
var cgnat = netip.MustParsePrefix("100.64.0.0/10")

// Public reports whether ip is a public unicast address.
func Public(ip netip.Addr) bool {
	ip = ip.Unmap()
	return ip.IsGlobalUnicast() && !ip.IsPrivate() && !cgnat.Contains(ip) && !(ip.Is4() && ip.As4()[0] == 0)
}

// Resolver looks names up (net.DefaultResolver, or a test's).
type Resolver interface {
	LookupNetIP(ctx context.Context, network, host string) ([]netip.Addr, error)
}

// Check parses raw as an absolute URL with one of schemes and no
// credentials, and refuses a host that is, or resolves to, a non-public
// address. Names that are internal by their form (single labels such as
// "redis", .localhost, .internal, .local, numeric shorthands such as 127.1)
// are refused without a lookup; a name that does not resolve passes (the
// service that fetches it will fail).
func Check(ctx context.Context, r Resolver, raw string, schemes ...string) (*url.URL, error) {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" || u.User != nil || !contains(schemes, u.Scheme) {
		return nil, fmt.Errorf("must be an absolute %s URL without credentials", strings.Join(schemes, " or "))
	}
	host := strings.ToLower(strings.TrimSuffix(u.Hostname(), "."))
	if ip, err := netip.ParseAddr(host); err == nil {
		if !Public(ip) {
			return nil, ErrInternal
		}
		return u, nil
	}
	labels := strings.Split(host, ".")
	last := labels[len(labels)-1]
	if len(labels) < 2 || last == "localhost" || last == "internal" || last == "local" || numeric(last) {
		return nil, ErrInternal
	}
	lctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	addrs, err := r.LookupNetIP(lctx, "ip", host)
	if err != nil {
		return u, nil
	}
	for _, a := range addrs {
		if !Public(a) {
			return nil, ErrInternal
		}
	}
	return u, nil
}

// numeric reports whether a label is a number (decimal, or 0x hex): no
// top-level domain is, but resolvers read such names as addresses.
func numeric(s string) bool {
	digits := "0123456789"
	if rest, ok := strings.CutPrefix(s, "0x"); ok {
		s, digits = rest, "0123456789abcdef"
	}
	return s != "" && strings.Trim(s, digits) == ""
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// Dialer returns a dialer that refuses to connect to non-public addresses,
// checked on the address actually dialled (after resolution), so that a
// name that resolved to a public address when it was given and to an
// internal one later (DNS rebinding) is refused too.
func Dialer(timeout time.Duration) *net.Dialer {
	return &net.Dialer{Timeout: timeout, KeepAlive: 30 * time.Second,
		Control: func(network, address string, _ syscall.RawConn) error {
			ap, err := netip.ParseAddrPort(address)
			if err != nil {
				return fmt.Errorf("dial %s: %w", address, err)
			}
			if !Public(ap.Addr()) {
				return fmt.Errorf("dial %s: %w", address, ErrInternal)
			}
			return nil
		}}
}
