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

	"code.dny.dev/ssrf"
)

// ErrInternal is returned for a URL or address that is not public.
var ErrInternal = errors.New("names a host that is not public (loopback, link-local, private or otherwise reserved)")

// guard decides which addresses are public, from the IANA special-purpose
// registries as code.dny.dev/ssrf keeps them: on IPv4 everything but the
// reserved ranges (loopback, private, link-local, CGNAT, benchmarking,
// documentation, protocol assignments, multicast, 240/4 ...); on IPv6
// global unicast (2000::/3) only, less NAT64, 6to4, Teredo and
// documentation, so every embedding of an IPv4 address (mapped,
// compatible, translated) is refused. Our connections go to ports 80 and
// 443 over TCP only.
var guard = ssrf.New()

// Public reports whether ip is a public unicast address.
func Public(ip netip.Addr) bool {
	return guard.SafeAddr(ip) == nil
}

// Resolver looks names up (net.DefaultResolver, or a test's).
type Resolver interface {
	LookupNetIP(ctx context.Context, network, host string) ([]netip.Addr, error)
}

// Check parses raw as an absolute URL with one of schemes and no
// credentials, and refuses a host that is, or resolves to, a non-public
// address. Names that are internal by their form (see internalName) are
// refused without a lookup; a name that does not resolve here passes (the
// service that fetches it resolves it as we do, and fails).
func Check(ctx context.Context, r Resolver, raw string, schemes ...string) (*url.URL, error) {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" || u.User != nil || !contains(schemes, u.Scheme) {
		return nil, fmt.Errorf("must be an absolute %s URL without credentials", strings.Join(schemes, " or "))
	}
	host := strings.ToLower(u.Hostname())
	if ip, err := netip.ParseAddr(host); err == nil {
		if !Public(ip) {
			return nil, ErrInternal
		}
		return u, nil
	}
	if internalName(strings.TrimSuffix(host, ".")) {
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

// internalName reports whether a host name is internal by its form: a
// single label ("redis"), an empty label ("a..b"), a name under a suffix
// kept for local networks, or a numeric last label (127.1, 0x7f.1), which
// resolvers read as an address.
func internalName(host string) bool {
	labels := strings.Split(host, ".")
	if len(labels) < 2 {
		return true
	}
	for _, l := range labels {
		if l == "" {
			return true
		}
	}
	last := labels[len(labels)-1]
	switch last {
	case "localhost", "internal", "local", "localdomain", "lan", "home", "corp", "intranet", "private":
		return true
	}
	return strings.HasSuffix(host, ".home.arpa") || numeric(last)
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

// Dialer returns a dialer that refuses to connect to anything but public
// addresses on ports 80 and 443, checked on the address actually dialled
// (after resolution, for every address and redirect), so that a name that
// resolved to a public address when it was given and to an internal one
// later (DNS rebinding) is refused too.
func Dialer(timeout time.Duration) *net.Dialer {
	return &net.Dialer{Timeout: timeout, KeepAlive: 30 * time.Second,
		Control: func(network, address string, c syscall.RawConn) error {
			if err := guard.Safe(network, address, c); err != nil {
				return fmt.Errorf("dial %s: %w (%v)", address, ErrInternal, err)
			}
			return nil
		}}
}
