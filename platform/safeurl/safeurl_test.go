package safeurl_test

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"testing"
	"time"

	"github.com/perpetuaflow/api/platform/safeurl"
	"github.com/perpetuaflow/api/test/testkit"
)

// resolver answers names from a table (and fails for the rest).
type resolver map[string]string

func (r resolver) LookupNetIP(_ context.Context, _, host string) ([]netip.Addr, error) {
	if a, ok := r[host]; ok {
		return []netip.Addr{netip.MustParseAddr(a)}, nil
	}
	return nil, &net.DNSError{Err: "no such host", Name: host, IsNotFound: true}
}

func TestCheckRefusesInternalHosts(t *testing.T) {
	r := resolver{"cdn.example.com": "93.184.216.34", "metadata.example.com": "169.254.169.254", "intranet.example.com": "10.1.2.3",
		"public-resolves-to-nat64.example.com": "64:ff9b::a9fe:a9fe", "public-resolves-to-6to4.example.com": "2002:a00:1::1"}
	cases := map[string]bool{
		"https://cdn.example.com/a.mp3":                 true,
		"https://93.184.216.34/a.mp3":                   true,
		"https://unknown.example.org/a.mp3":             true, // does not resolve here: the fetcher will fail
		"https://[2606:4700::1111]/a":                   true,
		"https://[2606:4700:4700::1111]:443/dns-query":  true,
		"https://cdn.example.com:8443/a.mp3":            true, // a port is not an address
		"https://audio.cafe/a.mp3":                      true, // hex letters are not a number
		"https://metadata.example.com/latest":           false,
		"https://intranet.example.com/a":                false,
		"http://public-resolves-to-nat64.example.com/a": false,
		"http://public-resolves-to-6to4.example.com/a":  false,
		"https://user:pw@cdn.example.com/a":             false,
		"ftp://cdn.example.com/a":                       false,
		"/relative/path":                                false,
	}
	for _, u := range testkit.InternalURLs(t) {
		cases[u] = false
	}
	for raw, ok := range cases {
		_, err := safeurl.Check(context.Background(), r, raw, "http", "https")
		if (err == nil) != ok {
			t.Errorf("%s: %v, want allowed %v", raw, err, ok)
		}
	}
}

func TestDialerRefusesInternalAddresses(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {}))
	defer srv.Close()
	client := &http.Client{Transport: &http.Transport{DialContext: safeurl.Dialer(time.Second).DialContext}}
	_, err := client.Get(srv.URL) // 127.0.0.1
	if !errors.Is(err, safeurl.ErrInternal) {
		t.Fatalf("dialled a loopback address: %v", err)
	}
}

func TestDialerConnectsOnlyToTheWebPorts(t *testing.T) {
	client := &http.Client{Transport: &http.Transport{DialContext: safeurl.Dialer(time.Second).DialContext}}
	_, err := client.Get("http://93.184.216.34:22/") // refused before any packet leaves
	if !errors.Is(err, safeurl.ErrInternal) {
		t.Fatalf("dialled port 22: %v", err)
	}
}
