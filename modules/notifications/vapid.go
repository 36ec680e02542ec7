package notifications

import (
	"crypto/ecdh"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"go.uber.org/zap"

	"github.com/perpetuaflow/api/platform/config"
)

// vapid holds the application server keys of WebPush (RFC 8292): an ECDSA
// P-256 pair, the public half as the browser's applicationServerKey.
type vapid struct {
	PublicKey  string `json:"public_key"`
	PrivateKey string `json:"private_key"`
	Contact    string `json:"contact"`
}

const vapidFile = "vapid.json"

// newVAPID reads the configured keys. Without them, development and staging
// generate a pair once into the data directory (and log its public key);
// production runs without push (the key endpoint answers 503).
func newVAPID(c Config, cfg *config.Config, log *zap.Logger) (*vapid, error) {
	if c.VAPIDPublicKey != "" || c.VAPIDPrivateKey != "" {
		v := &vapid{PublicKey: c.VAPIDPublicKey, PrivateKey: c.VAPIDPrivateKey, Contact: c.VAPIDContactEmail}
		if err := v.check(); err != nil {
			return nil, cfg.Refuse("push.vapid_private_key", "%v", err)
		}
		return v, nil
	}
	if cfg.IsProduction() {
		log.Warn("no VAPID keys configured: WebPush is off (set VAPID_PUBLIC_KEY and VAPID_PRIVATE_KEY)")
		return &vapid{}, nil
	}
	path := filepath.Join(cfg.DataDir, vapidFile)
	if b, err := os.ReadFile(path); err == nil {
		var v vapid
		if err := json.Unmarshal(b, &v); err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		return &v, v.check()
	}
	priv, err := ecdh.P256().GenerateKey(rand.Reader)
	if err != nil {
		return nil, err
	}
	v := &vapid{PublicKey: b64(priv.PublicKey().Bytes()), PrivateKey: b64(priv.Bytes()), Contact: c.VAPIDContactEmail}
	data, _ := json.Marshal(v)
	if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
		return nil, err
	}
	tmp, err := os.CreateTemp(cfg.DataDir, ".vapid-*.json")
	if err != nil {
		return nil, err
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return nil, err
	}
	tmp.Close()
	if err := os.Link(tmp.Name(), path); err != nil {
		if !errors.Is(err, os.ErrExist) {
			return nil, err
		}
		return newVAPID(c, cfg, log) // another process won: read its keys
	}
	log.Warn("generated development VAPID keys; configure VAPID_PUBLIC_KEY and VAPID_PRIVATE_KEY in production",
		zap.String("public_key", v.PublicKey), zap.String("path", path))
	return v, nil
}

func (v *vapid) check() error {
	priv, err := base64.RawURLEncoding.DecodeString(v.PrivateKey)
	if err != nil {
		return fmt.Errorf("private key is not base64url: %w", err)
	}
	key, err := ecdh.P256().NewPrivateKey(priv)
	if err != nil {
		return fmt.Errorf("private key: %w", err)
	}
	if b64(key.PublicKey().Bytes()) != v.PublicKey {
		return errors.New("the public key does not belong to the private key")
	}
	return nil
}

func b64(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }
