package httpx_test

import (
	"net/netip"
	"testing"

	"github.com/perpetuaflow/api/platform/httpx"
)

func TestClientIPIsTheRightmostUntrustedEntry(t *testing.T) {
	t.Parallel()
	peer := netip.MustParseAddr("10.1.0.5")
	cases := []struct {
		name    string
		header  string
		trusted []string
		remote  netip.Addr
		values  []string
		want    string
	}{
		{"no proxy configured", "", nil, peer, []string{"1.2.3.4"}, "10.1.0.5"},
		{"no header sent", "X-Forwarded-For", nil, peer, nil, "10.1.0.5"},
		{"one proxy: rightmost entry", "X-Forwarded-For", nil, peer, []string{"6.6.6.6, 203.0.113.7"}, "203.0.113.7"},
		{"trusted hops are skipped", "X-Forwarded-For", []string{"10.0.0.0/8"}, peer,
			[]string{"6.6.6.6, 203.0.113.7, 10.2.0.1"}, "203.0.113.7"},
		{"several header lines", "X-Forwarded-For", []string{"10.0.0.0/8"}, peer,
			[]string{"6.6.6.6", "203.0.113.7", "10.2.0.1"}, "203.0.113.7"},
		{"untrusted peer: header ignored", "X-Forwarded-For", []string{"10.0.0.0/8"},
			netip.MustParseAddr("198.51.100.9"), []string{"1.2.3.4"}, "198.51.100.9"},
		{"garbage stops at the last believed hop", "X-Forwarded-For", []string{"10.0.0.0/8"}, peer,
			[]string{"1.2.3.4, <script>, 10.2.0.1"}, "10.2.0.1"},
		{"garbage from the one proxy's side", "X-Forwarded-For", nil, peer, []string{"hello"}, "10.1.0.5"},
		{"ports and IPv6", "X-Forwarded-For", []string{"10.0.0.0/8"}, peer,
			[]string{"[2001:db8::1]:443, 10.2.0.1:80"}, "2001:db8::1"},
		{"IPv4 in IPv6", "X-Forwarded-For", nil, peer, []string{"::ffff:203.0.113.7"}, "203.0.113.7"},
		{"all trusted: the leftmost", "X-Forwarded-For", []string{"10.0.0.0/8"}, peer,
			[]string{"10.3.0.1, 10.2.0.1"}, "10.3.0.1"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			ips, err := httpx.NewClientIPs(c.header, c.trusted)
			if err != nil {
				t.Fatal(err)
			}
			if got := ips.Resolve(c.remote, c.values).String(); got != c.want {
				t.Fatalf("got %s, want %s", got, c.want)
			}
		})
	}
	if _, err := httpx.NewClientIPs("X-Forwarded-For", []string{"nope"}); err == nil {
		t.Fatal("a bad trusted proxy was accepted")
	}
}

func FuzzClientIP(f *testing.F) {
	f.Add("1.2.3.4, 10.0.0.1")
	f.Add("[::1]:80,,  ,x")
	f.Add("::ffff:1.2.3.4%eth0")
	ips, _ := httpx.NewClientIPs("X-Forwarded-For", []string{"10.0.0.0/8"})
	peer := netip.MustParseAddr("10.0.0.2")
	f.Fuzz(func(t *testing.T, header string) {
		got := ips.Resolve(peer, []string{header})
		if !got.IsValid() {
			t.Fatalf("no address for %q", header)
		}
	})
}
