package auth

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"os"
	"path/filepath"
	"strings"

	"go.uber.org/zap"

	"github.com/perpetuaflow/api/platform/config"
)

// keyring holds the key that signs access tokens and every public key that
// still verifies them (the current one and earlier ones during rotation).
type keyring struct {
	signer *rsa.PrivateKey
	kid    string
	public map[string]*rsa.PublicKey
	jwks   JWKS
}

// JWK is one RSA public key in JSON Web Key form.
type JWK struct {
	Kty string `json:"kty" example:"RSA"`
	Use string `json:"use" example:"sig"`
	Alg string `json:"alg" example:"RS256"`
	Kid string `json:"kid"`
	N   string `json:"n" doc:"Modulus, base64url"`
	E   string `json:"e" doc:"Exponent, base64url"`
}

// JWKS is a JSON Web Key Set.
type JWKS struct {
	Keys []JWK `json:"keys"`
}

const (
	generatedKeyFile = "jwt-private.pem"
	minKeyBits       = 2048
)

// loadKeys reads the configured key pair. Without one, development and
// staging use a pair generated once into the data directory (shared by every
// process started on it); production refuses to start.
func loadKeys(c Config, dataDir string, production bool, log *zap.Logger) (*keyring, error) {
	privPEM, err := pemFrom(c.PrivateKey, c.PrivateKeyPath, "auth.jwt_private_key")
	if err != nil {
		return nil, err
	}
	if privPEM == nil {
		if production {
			return nil, config.Invalid("auth.jwt_private_key", "required in production (set JWT_PRIVATE_KEY or JWT_PRIVATE_KEY_PATH)")
		}
		path := filepath.Join(dataDir, generatedKeyFile)
		created := false
		if privPEM, created, err = loadOrGenerate(path); err != nil {
			return nil, fmt.Errorf("development JWT key %s: %w", path, err)
		}
		if created {
			log.Warn("generated a development JWT key pair; configure JWT_PRIVATE_KEY in production", zap.String("path", path))
		}
	}
	signer, err := parsePrivateKey(privPEM)
	if err != nil {
		return nil, config.Invalid("auth.jwt_private_key", "%v", err)
	}
	pubPEM, err := pemFrom(c.PublicKey, c.PublicKeyPath, "auth.jwt_public_key")
	if err != nil {
		return nil, err
	}
	if pubPEM != nil {
		pub, err := parsePublicKey(pubPEM)
		if err != nil {
			return nil, config.Invalid("auth.jwt_public_key", "%v", err)
		}
		if !pub.Equal(&signer.PublicKey) {
			return nil, config.Invalid("auth.jwt_public_key", "does not match auth.jwt_private_key")
		}
	}
	k := &keyring{signer: signer, public: map[string]*rsa.PublicKey{}}
	k.kid = k.add(&signer.PublicKey)
	for i, p := range c.PreviousPublicKeys {
		pub, err := parsePublicKey([]byte(unescapeNewlines(p)))
		if err != nil {
			return nil, config.Invalid("auth.jwt_previous_public_keys", "item %d: %v", i, err)
		}
		k.add(pub)
	}
	return k, nil
}

func (k *keyring) add(pub *rsa.PublicKey) string {
	jwk := JWK{Kty: "RSA", Use: "sig", Alg: "RS256",
		N: b64(pub.N.Bytes()), E: b64(big.NewInt(int64(pub.E)).Bytes())}
	jwk.Kid = thumbprint(jwk)
	if _, dup := k.public[jwk.Kid]; !dup {
		k.public[jwk.Kid] = pub
		k.jwks.Keys = append(k.jwks.Keys, jwk)
	}
	return jwk.Kid
}

// thumbprint is the RFC 7638 JWK thumbprint, used as the key id.
func thumbprint(j JWK) string {
	sum := sha256.Sum256([]byte(`{"e":"` + j.E + `","kty":"RSA","n":"` + j.N + `"}`))
	return b64(sum[:])
}

func b64(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }

// pemFrom returns the PEM text given inline or in a file, or nil.
func pemFrom(inline, path, key string) ([]byte, error) {
	if strings.TrimSpace(inline) != "" {
		return []byte(unescapeNewlines(inline)), nil
	}
	if path != "" {
		b, err := os.ReadFile(path)
		if err != nil {
			return nil, config.Invalid(key+"_path", "%v", err)
		}
		return b, nil
	}
	return nil, nil
}

// unescapeNewlines accepts PEM text written on one line with literal \n, as
// .env files often carry it.
func unescapeNewlines(s string) string { return strings.ReplaceAll(s, `\n`, "\n") }

func parsePrivateKey(b []byte) (*rsa.PrivateKey, error) {
	block, _ := pem.Decode(b)
	if block == nil {
		return nil, errors.New("not PEM")
	}
	var key *rsa.PrivateKey
	switch block.Type {
	case "RSA PRIVATE KEY":
		k, err := x509.ParsePKCS1PrivateKey(block.Bytes)
		if err != nil {
			return nil, err
		}
		key = k
	case "PRIVATE KEY":
		k, err := x509.ParsePKCS8PrivateKey(block.Bytes)
		if err != nil {
			return nil, err
		}
		rk, ok := k.(*rsa.PrivateKey)
		if !ok {
			return nil, errors.New("not an RSA key")
		}
		key = rk
	default:
		return nil, fmt.Errorf("unexpected PEM block %q", block.Type)
	}
	if key.N.BitLen() < minKeyBits {
		return nil, fmt.Errorf("RSA key has %d bits, need at least %d", key.N.BitLen(), minKeyBits)
	}
	return key, nil
}

func parsePublicKey(b []byte) (*rsa.PublicKey, error) {
	block, _ := pem.Decode(b)
	if block == nil {
		return nil, errors.New("not PEM")
	}
	switch block.Type {
	case "RSA PUBLIC KEY":
		return x509.ParsePKCS1PublicKey(block.Bytes)
	case "PUBLIC KEY":
		k, err := x509.ParsePKIXPublicKey(block.Bytes)
		if err != nil {
			return nil, err
		}
		rk, ok := k.(*rsa.PublicKey)
		if !ok {
			return nil, errors.New("not an RSA key")
		}
		return rk, nil
	}
	return nil, fmt.Errorf("unexpected PEM block %q", block.Type)
}

// loadOrGenerate reads the key at path, or generates one there. Several
// processes may start together on one data directory: the key is written to a
// temporary file and linked into place, so exactly one key wins and every
// process reads that one.
func loadOrGenerate(path string) ([]byte, bool, error) {
	if b, err := os.ReadFile(path); err == nil {
		return b, false, nil
	} else if !errors.Is(err, os.ErrNotExist) {
		return nil, false, err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, false, err
	}
	key, err := rsa.GenerateKey(rand.Reader, minKeyBits)
	if err != nil {
		return nil, false, err
	}
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, false, err
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), ".jwt-*.pem")
	if err != nil {
		return nil, false, err
	}
	defer os.Remove(tmp.Name())
	if err := pem.Encode(tmp, &pem.Block{Type: "PRIVATE KEY", Bytes: der}); err != nil {
		tmp.Close()
		return nil, false, err
	}
	if err := tmp.Close(); err != nil {
		return nil, false, err
	}
	created := true
	if err := os.Link(tmp.Name(), path); err != nil {
		if !errors.Is(err, os.ErrExist) {
			return nil, false, err
		}
		created = false // another process won the race
	}
	b, err := os.ReadFile(path)
	return b, created, err
}
