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
	r := resolver{"cdn.example.com": "93.184.216.34", "metadata.example.com": "169.254.169.254", "intranet.example.com": "10.1.2.3"}
	for raw, ok := range map[string]bool{
		"https://cdn.example.com/a.mp3":           true,
		"https://93.184.216.34/a.mp3":             true,
		"https://unknown.example.org/a.mp3":       true, // does not resolve here: the fetcher will fail
		"https://[2606:4700::1111]/a":             true,
		"https://metadata.example.com/latest":     false,
		"https://intranet.example.com/a":          false,
		"http://127.0.0.1/a":                      false,
		"http://127.1/a":                          false,
		"http://2130706433/a":                     false,
		"http://0x7f000001/a":                     false,
		"http://0.0.0.0/a":                        false,
		"http://[::1]/a":                          false,
		"http://[::ffff:127.0.0.1]/a":             false,
		"http://[fe80::1]/a":                      false,
		"http://[fd00::1]/a":                      false,
		"http://169.254.169.254/latest/meta-data": false,
		"http://100.64.0.1/a":                     false,
		"http://192.168.0.10/a":                   false,
		"http://172.16.5.4/a":                     false,
		"http://localhost:8080/a":                 false,
		"http://api.localhost/a":                  false,
		"http://redis:6379/a":                     false,
		"http://db.internal/a":                    false,
		"http://printer.local/a":                  false,
		"https://user:pw@cdn.example.com/a":       false,
		"ftp://cdn.example.com/a":                 false,
		"/relative/path":                          false,
		"https://audio.cafe/a.mp3":                true, // hex letters are not a number
	} {
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
