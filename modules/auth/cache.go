package auth

import (
	"sync"
	"time"

	"github.com/google/uuid"

	"github.com/perpetuaflow/api/platform/clock"
)

// sessionCache remembers, per access token, the principal that the token's
// signature and its session's row in the database vouched for, for a short
// time (auth.session_cache_ttl): the hot path then neither verifies an RSA
// signature nor reads the database for every request.
//
// What it costs: a session revoked, or a tier or time zone changed, by
// another instance (or by the worker role) is seen here within the TTL.
// Changes made by this instance forget the affected entries once they are
// committed, so they apply here at once. The token's own expiry is checked on
// every request.
type sessionCache struct {
	ttl   time.Duration
	clock clock.Clock

	mu      sync.RWMutex
	entries map[string]cachedSession
	// gen counts forgets: a lookup that started before a forget does not
	// store what it read (it may predate the change).
	gen uint64
}

type cachedSession struct {
	principal Principal
	expires   time.Time // the access token's exp
	checked   time.Time // when the database vouched for the session
}

// maxCachedSessions bounds the cache; when it is full it starts over.
const maxCachedSessions = 100_000

func newSessionCache(cfg Config, clk clock.Clock) *sessionCache {
	return &sessionCache{ttl: cfg.SessionCacheTTL, clock: clk, entries: map[string]cachedSession{}}
}

// get returns the principal of token when it was vouched for within the
// TTL and the token has not expired.
func (c *sessionCache) get(token string) (Principal, bool) {
	if c.ttl <= 0 {
		return Principal{}, false
	}
	c.mu.RLock()
	e, ok := c.entries[token]
	c.mu.RUnlock()
	if !ok {
		return Principal{}, false
	}
	now := c.clock.Now()
	if !now.Before(e.expires) || now.Sub(e.checked) >= c.ttl || now.Before(e.checked) {
		return Principal{}, false
	}
	return e.principal, true
}

// generation is read before a lookup in the database and handed to put.
func (c *sessionCache) generation() uint64 {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return c.gen
}

// put remembers what the database said at checked, unless something was
// forgotten since gen was read.
func (c *sessionCache) put(token string, p Principal, expires, checked time.Time, gen uint64) {
	if c.ttl <= 0 {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.gen != gen {
		return
	}
	if len(c.entries) >= maxCachedSessions {
		c.entries = make(map[string]cachedSession)
	}
	c.entries[token] = cachedSession{principal: p, expires: expires, checked: checked}
}

// forgetSessions drops the entries of the sessions.
func (c *sessionCache) forgetSessions(ids ...uuid.UUID) {
	c.forget(func(p Principal) bool {
		for _, id := range ids {
			if p.SessionID == id {
				return true
			}
		}
		return false
	})
}

// forgetUser drops the entries of the user's sessions.
func (c *sessionCache) forgetUser(id uuid.UUID) {
	c.forget(func(p Principal) bool { return p.UserID == id })
}

func (c *sessionCache) forget(match func(Principal) bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.gen++
	for token, e := range c.entries {
		if match(e.principal) || !c.clock.Now().Before(e.expires) {
			delete(c.entries, token)
		}
	}
}
