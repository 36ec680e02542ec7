package testkit

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/ecdh"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/hkdf"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/google/uuid"
)

// PushService is a local WebPush service (like a browser vendor's): it
// holds subscriptions with their keys, checks each push's VAPID token
// (RFC 8292) and decrypts its payload (RFC 8291, aes128gcm) the way a
// browser would, and answers with the status each endpoint is set to.
type PushService struct {
	srv *httptest.Server

	mu        sync.Mutex
	endpoints map[string]*PushEndpoint
	// VAPIDKey, when set, is the application server key every push must
	// be signed with.
	VAPIDKey string
	failures []string
}

// PushEndpoint is one browser's subscription at the PushService.
type PushEndpoint struct {
	// Endpoint, P256dh and Auth are what the browser gives the server.
	Endpoint string
	P256dh   string
	Auth     string

	priv     *ecdh.PrivateKey
	secret   []byte
	status   int
	messages [][]byte
	headers  []http.Header
}

// NewPushService starts the service (over TLS, as push services are).
func NewPushService(t testing.TB) *PushService {
	t.Helper()
	p := &PushService{endpoints: map[string]*PushEndpoint{}}
	p.srv = httptest.NewTLSServer(http.HandlerFunc(p.serve))
	t.Cleanup(p.srv.Close)
	return p
}

// Client trusts the service's certificate.
func (p *PushService) Client() *http.Client { return p.srv.Client() }

// Certificate is the service's certificate in PEM (for a process's
// SSL_CERT_FILE).
func (p *PushService) Certificate() []byte {
	var b bytes.Buffer
	fmt.Fprintf(&b, "-----BEGIN CERTIFICATE-----\n%s\n-----END CERTIFICATE-----\n",
		base64.StdEncoding.EncodeToString(p.srv.Certificate().Raw))
	return b.Bytes()
}

// Subscribe makes a browser subscription answering status to pushes.
func (p *PushService) Subscribe(t testing.TB, status int) *PushEndpoint {
	t.Helper()
	priv, err := ecdh.P256().GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	secret := make([]byte, 16)
	_, _ = rand.Read(secret)
	path := "/push/" + uuid.NewString()
	e := &PushEndpoint{Endpoint: p.srv.URL + path, P256dh: base64.RawURLEncoding.EncodeToString(priv.PublicKey().Bytes()),
		Auth: base64.RawURLEncoding.EncodeToString(secret), priv: priv, secret: secret, status: status}
	p.mu.Lock()
	p.endpoints[path] = e
	p.mu.Unlock()
	return e
}

// Messages returns the decrypted payloads the endpoint received.
func (p *PushService) Messages(e *PushEndpoint) []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := make([]string, len(e.messages))
	for i, m := range e.messages {
		out[i] = string(m)
	}
	return out
}

// Headers returns the headers of the pushes the endpoint received.
func (p *PushService) Headers(e *PushEndpoint) []http.Header {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]http.Header(nil), e.headers...)
}

// Failures lists pushes that were refused for a bad token or payload.
func (p *PushService) Failures() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]string(nil), p.failures...)
}

func (p *PushService) fail(w http.ResponseWriter, status int, format string, args ...any) {
	p.mu.Lock()
	p.failures = append(p.failures, fmt.Sprintf(format, args...))
	p.mu.Unlock()
	http.Error(w, fmt.Sprintf(format, args...), status)
}

func (p *PushService) serve(w http.ResponseWriter, r *http.Request) {
	p.mu.Lock()
	e, ok := p.endpoints[r.URL.Path]
	want := p.VAPIDKey
	p.mu.Unlock()
	if !ok || r.Method != http.MethodPost {
		http.NotFound(w, r)
		return
	}
	if r.Header.Get("TTL") == "" || r.Header.Get("Content-Encoding") != "aes128gcm" {
		p.fail(w, http.StatusBadRequest, "missing TTL or not aes128gcm")
		return
	}
	if err := checkVAPID(r, "https://"+r.Host, want); err != nil {
		p.fail(w, http.StatusUnauthorized, "vapid: %v", err)
		return
	}
	body, _ := io.ReadAll(r.Body)
	msg, err := decryptPush(e.priv, e.secret, body)
	if err != nil {
		p.fail(w, http.StatusBadRequest, "decrypt: %v", err)
		return
	}
	p.mu.Lock()
	e.messages = append(e.messages, msg)
	e.headers = append(e.headers, r.Header.Clone())
	status := e.status
	p.mu.Unlock()
	w.WriteHeader(status)
}

// checkVAPID verifies "Authorization: vapid t=<JWT>, k=<key>": an ES256
// token signed by k for the push service's origin, not expired, with a
// contact.
func checkVAPID(r *http.Request, audience, want string) error {
	h := r.Header.Get("Authorization")
	rest, ok := strings.CutPrefix(h, "vapid ")
	if !ok {
		return fmt.Errorf("authorization %q is not vapid", h)
	}
	var token, key string
	for _, part := range strings.Split(rest, ",") {
		k, v, _ := strings.Cut(strings.TrimSpace(part), "=")
		switch k {
		case "t":
			token = v
		case "k":
			key = v
		}
	}
	if want != "" && key != want {
		return errors.New("signed with another application server key")
	}
	raw, err := base64.RawURLEncoding.DecodeString(key)
	if err != nil {
		return errors.New("k is not base64url")
	}
	pub, err := ecdsa.ParseUncompressedPublicKey(elliptic.P256(), raw)
	if err != nil {
		return errors.New("k is not an uncompressed P-256 point")
	}
	claims := jwt.MapClaims{}
	_, err = jwt.ParseWithClaims(token, claims, func(*jwt.Token) (any, error) { return pub, nil },
		jwt.WithValidMethods([]string{"ES256"}), jwt.WithAudience(audience), jwt.WithExpirationRequired())
	if err != nil {
		return err
	}
	if exp, _ := claims.GetExpirationTime(); exp == nil || exp.After(time.Now().Add(24*time.Hour)) {
		return errors.New("exp more than 24 hours ahead")
	}
	if sub, _ := claims["sub"].(string); !strings.HasPrefix(sub, "mailto:") && !strings.HasPrefix(sub, "https:") {
		return fmt.Errorf("sub %q is not a mailto: or https: contact", sub)
	}
	return nil
}

// decryptPush undoes RFC 8291's aes128gcm content coding as the browser
// that owns priv and secret would.
func decryptPush(priv *ecdh.PrivateKey, secret, body []byte) ([]byte, error) {
	if len(body) < 21 {
		return nil, errors.New("too short")
	}
	salt, rs, idlen := body[:16], binary.BigEndian.Uint32(body[16:20]), int(body[20])
	if len(body) < 21+idlen || rs < 18 {
		return nil, errors.New("bad header")
	}
	senderKey, ciphertext := body[21:21+idlen], body[21+idlen:]
	sender, err := ecdh.P256().NewPublicKey(senderKey)
	if err != nil {
		return nil, fmt.Errorf("sender key: %w", err)
	}
	shared, err := priv.ECDH(sender)
	if err != nil {
		return nil, err
	}
	info := append(append([]byte("WebPush: info\x00"), priv.PublicKey().Bytes()...), senderKey...)
	ikm, err := hkdf.Key(sha256.New, shared, secret, string(info), 32)
	if err != nil {
		return nil, err
	}
	cek, err := hkdf.Key(sha256.New, ikm, salt, "Content-Encoding: aes128gcm\x00", 16)
	if err != nil {
		return nil, err
	}
	nonce, err := hkdf.Key(sha256.New, ikm, salt, "Content-Encoding: nonce\x00", 12)
	if err != nil {
		return nil, err
	}
	block, err := aes.NewCipher(cek)
	if err != nil {
		return nil, err
	}
	gcm, err := cipher.NewGCM(block)
	if err != nil {
		return nil, err
	}
	if len(ciphertext) > int(rs) {
		return nil, errors.New("more than one record")
	}
	plain, err := gcm.Open(nil, nonce, ciphertext, nil)
	if err != nil {
		return nil, fmt.Errorf("open: %w", err)
	}
	plain = bytes.TrimRight(plain, "\x00")
	if len(plain) == 0 || plain[len(plain)-1] != 2 {
		return nil, errors.New("no last-record delimiter")
	}
	return plain[:len(plain)-1], nil
}
