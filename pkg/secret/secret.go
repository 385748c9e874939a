// Package secret loads mmsgate's Secrets Manager secret (contract §4) and
// caches it: one fetch at a time, a 5-minute TTL, the stale value kept when
// a refresh fails, and a forced refresh when Skycore rejects the key.
package secret

import (
	"context"
	"encoding/json"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"golang.org/x/sync/singleflight"

	"github.com/mmsgate/mmsgate/pkg/apperr"
)

// DefaultTTL is how long a fetched secret is used before it is fetched again.
const DefaultTTL = 5 * time.Minute

// fetchTimeout bounds one GetSecretValue, independent of the caller that
// happened to start it (others wait on the same fetch).
const fetchTimeout = 5 * time.Second

// Values is the secret's JSON.
type Values struct {
	APIKey        string `json:"api_key"`
	PostbackToken string `json:"postback_token"`
}

type getter interface {
	GetSecretValue(ctx context.Context, in *secretsmanager.GetSecretValueInput, opts ...func(*secretsmanager.Options)) (*secretsmanager.GetSecretValueOutput, error)
}

// Cache is safe for concurrent use.
type Cache struct {
	api getter
	id  string
	ttl time.Duration
	now func() time.Time
	sf  singleflight.Group

	mu      sync.Mutex
	val     Values
	fetched time.Time
}

// New returns a cache of the secret id (SKYCORE_SECRET_ID).
func New(api getter, id string, ttl time.Duration) *Cache {
	if ttl <= 0 {
		ttl = DefaultTTL
	}
	return &Cache{api: api, id: id, ttl: ttl, now: time.Now}
}

// Get returns the cached secret, fetching it when it is missing or older
// than the TTL. A failed refresh returns the stale value; with nothing
// cached the error is *apperr.Error (UNAVAILABLE/retry, or config when the
// secret is unusable).
func (c *Cache) Get(ctx context.Context) (Values, error) {
	c.mu.Lock()
	v, at := c.val, c.fetched
	c.mu.Unlock()
	if !at.IsZero() && c.now().Sub(at) < c.ttl {
		return v, nil
	}
	nv, err := c.fetch(ctx)
	if err != nil && !at.IsZero() {
		return v, nil // stale beats nothing; the next Get tries again
	}
	return nv, err
}

// Refresh fetches again unless the cache already moved past stale (another
// worker refreshed it after the same rejection).
func (c *Cache) Refresh(ctx context.Context, stale Values) (Values, error) {
	c.mu.Lock()
	v := c.val
	c.mu.Unlock()
	if v != stale && v.APIKey != "" {
		return v, nil
	}
	return c.fetch(ctx)
}

func (c *Cache) fetch(ctx context.Context) (Values, error) {
	const op = "secret.Get"
	ch := c.sf.DoChan("fetch", func() (any, error) {
		fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), fetchTimeout)
		defer cancel()
		out, err := c.api.GetSecretValue(fctx, &secretsmanager.GetSecretValueInput{SecretId: aws.String(c.id)})
		if err != nil {
			return Values{}, &apperr.Error{Code: apperr.CodeUnavailable, Class: apperr.Retry, Op: op,
				Message: "cannot read secret " + c.id, Err: err}
		}
		var v Values
		if out.SecretString == nil || json.Unmarshal([]byte(*out.SecretString), &v) != nil {
			return Values{}, &apperr.Error{Code: apperr.CodeInternal, Class: apperr.Config, Op: op,
				Message: "secret " + c.id + " is not JSON with api_key and postback_token"}
		}
		c.mu.Lock()
		c.val, c.fetched = v, c.now()
		c.mu.Unlock()
		return v, nil
	})
	select {
	case r := <-ch:
		if r.Err != nil {
			return Values{}, r.Err
		}
		return r.Val.(Values), nil
	case <-ctx.Done():
		return Values{}, &apperr.Error{Code: apperr.CodeTimeout, Class: apperr.Retry, Op: op, Message: "secret fetch cut short", Err: ctx.Err()}
	}
}
