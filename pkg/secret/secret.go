// Package secret loads mmsgate's Secrets Manager secrets (docs/secrets.md) and
// caches them: one fetch at a time, a 5-minute TTL, the stale value kept
// when a refresh fails, and a forced refresh when Skycore rejects the key.
//
// Each function names the one field it reads: the sender the API key
// (SKYCORE_SECRET_ID), the internet-facing postback function only the
// token (POSTBACK_SECRET_ID). A secret may hold both (one local secret);
// a cache keeps only its fields, so the postback function never holds
// the API key even then.
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

// Field is one key of the secret's JSON.
type Field string

// The fields a function may need.
const (
	APIKey        Field = "api_key"        // the sender's
	PostbackToken Field = "postback_token" // the postback function's
)

// keep returns v with only the fields in need (all when need is empty),
// and the first needed field that is missing or empty.
func keep(v Values, need []Field) (Values, Field) {
	if len(need) == 0 {
		if v.APIKey == "" && v.PostbackToken == "" {
			return v, APIKey + " or " + PostbackToken
		}
		return v, ""
	}
	var out Values
	var missing Field
	for _, f := range need {
		switch f {
		case APIKey:
			out.APIKey = v.APIKey
			if v.APIKey == "" && missing == "" {
				missing = f
			}
		case PostbackToken:
			out.PostbackToken = v.PostbackToken
			if v.PostbackToken == "" && missing == "" {
				missing = f
			}
		}
	}
	return out, missing
}

type getter interface {
	GetSecretValue(ctx context.Context, in *secretsmanager.GetSecretValueInput, opts ...func(*secretsmanager.Options)) (*secretsmanager.GetSecretValueOutput, error)
}

// Cache is safe for concurrent use.
type Cache struct {
	api  getter
	id   string
	ttl  time.Duration
	need []Field
	now  func() time.Time
	sf   singleflight.Group

	mu      sync.Mutex
	val     Values
	fetched time.Time
}

// New returns a cache of the secret id that requires and keeps the fields
// in need (the sender APIKey, the postback function PostbackToken); with
// none it keeps both and requires one of them.
func New(api getter, id string, ttl time.Duration, need ...Field) *Cache {
	if ttl <= 0 {
		ttl = DefaultTTL
	}
	return &Cache{api: api, id: id, ttl: ttl, need: need, now: time.Now}
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
				Message: "secret " + c.id + " is not a JSON object of strings"}
		}
		v, missing := keep(v, c.need)
		if missing != "" {
			return Values{}, &apperr.Error{Code: apperr.CodeInternal, Class: apperr.Config, Op: op,
				Message: "secret " + c.id + " has no " + string(missing)}
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
