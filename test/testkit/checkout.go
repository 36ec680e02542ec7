package testkit

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
)

// Checkout is a local server speaking Checkout.com's Hosted Payments Page
// API as far as we use it (POST /hosted-payments): it records the requests
// and answers 201 with the page's id (hpp_1, hpp_2, ...) and redirect link;
// and DELETE /instruments/{id} (204), which deletes a stored card.
type Checkout struct {
	// URL is the base URL to configure (CHECKOUT_API_URL).
	URL string
	// Key is the secret key it expects (CHECKOUT_SECRET_KEY).
	Key string

	mu       sync.Mutex
	requests []map[string]any
	auth     []string
	deleted  []string
	failing  int
}

// FailDeletes makes the next n instrument deletions answer 503.
func (c *Checkout) FailDeletes(n int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.failing = n
}

// DeletedInstruments are the stored cards deleted (DELETE
// /instruments/{id} answered 204), in order.
func (c *Checkout) DeletedInstruments() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]string(nil), c.deleted...)
}

func (c *Checkout) deleteInstrument(w http.ResponseWriter, r *http.Request) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.auth = append(c.auth, r.Header.Get("Authorization"))
	if c.failing > 0 {
		c.failing--
		w.WriteHeader(http.StatusServiceUnavailable)
		return
	}
	c.deleted = append(c.deleted, strings.TrimPrefix(r.URL.Path, "/instruments/"))
	w.WriteHeader(http.StatusNoContent)
}

// NewCheckout starts the fake.
func NewCheckout(t testing.TB) *Checkout {
	t.Helper()
	c := &Checkout{Key: "sk_sbox_test"}
	srv := httptest.NewServer(c)
	t.Cleanup(srv.Close)
	c.URL = srv.URL
	return c
}

// Requests are the bodies of the pages asked for, in order.
func (c *Checkout) Requests() []map[string]any {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]map[string]any(nil), c.requests...)
}

// Authorizations are the Authorization headers received, in order.
func (c *Checkout) Authorizations() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]string(nil), c.auth...)
}

// ServeHTTP implements http.Handler.
func (c *Checkout) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method == http.MethodDelete && strings.HasPrefix(r.URL.Path, "/instruments/") {
		c.deleteInstrument(w, r)
		return
	}
	if r.Method != http.MethodPost || r.URL.Path != "/hosted-payments" {
		http.NotFound(w, r)
		return
	}
	body, _ := io.ReadAll(r.Body)
	var req map[string]any
	_ = json.Unmarshal(body, &req)
	c.mu.Lock()
	c.requests = append(c.requests, req)
	c.auth = append(c.auth, r.Header.Get("Authorization"))
	n := len(c.requests)
	c.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusCreated)
	fmt.Fprintf(w, `{"id":"hpp_%d","reference":%q,"_links":{"self":{"href":"https://api.sandbox.checkout.com/hosted-payments/hpp_%d"},
		"redirect":{"href":"https://pay.sandbox.checkout.com/page/hpp_%d"}}}`, n, req["reference"], n, n)
}

// SignWebhook is the Cko-Signature of body: the lowercase hex HMAC-SHA256
// with the webhook secret.
func SignWebhook(secret string, body []byte) string {
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write(body)
	return hex.EncodeToString(mac.Sum(nil))
}
