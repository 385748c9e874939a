package secret

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	smtypes "github.com/aws/aws-sdk-go-v2/service/secretsmanager/types"

	"github.com/mmsgate/mmsgate/internal/fakesecrets"
	"github.com/mmsgate/mmsgate/internal/faultproxy"
	"github.com/mmsgate/mmsgate/internal/moto"
	"github.com/mmsgate/mmsgate/pkg/apperr"
)

// rig is one Secrets Manager for a test, behind a fault proxy (down,
// slow) that also counts the reads: fakesecrets (what `go test -short`
// can run) and, in the full suite, moto's, so that both answer alike.
type rig struct {
	ID     string // the test's own secret
	put    func(value string)
	faults *faultproxy.Proxy
}

// Put sets the secret's value (creating it).
func (r *rig) Put(value string) { r.put(value) }

// Calls counts the GetSecretValue calls made through the proxy.
func (r *rig) Calls() int64 {
	var n int64
	for c, k := range r.faults.Calls() {
		if c.Op == "GetSecretValue" {
			n += k
		}
	}
	return n
}

var (
	motoOnce sync.Once
	motoURL  string
	motoErr  error
	secretN  atomic.Int64
)

func TestMain(m *testing.M) {
	code := m.Run()
	if motoSrv != nil {
		motoSrv.Close()
	}
	os.Exit(code)
}

var motoSrv *moto.Server

func client(t *testing.T, url string) *secretsmanager.Client {
	t.Helper()
	cfg, err := config.LoadDefaultConfig(context.Background(), config.WithRegion("us-east-1"),
		config.WithCredentialsProvider(aws.CredentialsProviderFunc(func(context.Context) (aws.Credentials, error) {
			return aws.Credentials{AccessKeyID: "a", SecretAccessKey: "b"}, nil
		})))
	if err != nil {
		t.Fatal(err)
	}
	return secretsmanager.NewFromConfig(cfg, func(o *secretsmanager.Options) {
		o.BaseEndpoint = aws.String(url)
		o.RetryMaxAttempts = 1
	})
}

// each runs f on every Secrets Manager: a rig, and a real SDK client
// through its proxy.
func each(t *testing.T, f func(t *testing.T, fake *rig, faults *faultproxy.Proxy, api *secretsmanager.Client)) {
	t.Helper()
	run := func(name, target string, put func(r *rig) func(string)) {
		t.Run(name, func(t *testing.T) {
			faults, url, err := faultproxy.Front(target, "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { faults.Close() })
			r := &rig{ID: fmt.Sprintf("mmsgate/test-%d", secretN.Add(1)), faults: faults}
			r.put = put(r)
			f(t, r, faults, client(t, url))
		})
	}
	fake := fakesecrets.New()
	target, err := fake.Start("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { fake.Close() })
	run("fakesecrets", target, func(r *rig) func(string) { return func(v string) { fake.Put(r.ID, v) } })
	if testing.Short() {
		return
	}
	if _, err := moto.Binary(); err != nil {
		t.Logf("moto: %v", err)
		return
	}
	motoOnce.Do(func() {
		if motoSrv, motoErr = moto.Start(context.Background(), moto.Options{}); motoErr == nil {
			motoURL = motoSrv.URL
		}
	})
	if motoErr != nil {
		t.Fatal(motoErr)
	}
	run("moto", motoURL, func(r *rig) func(string) {
		direct := client(t, motoURL)
		return func(v string) {
			_, err := direct.PutSecretValue(context.Background(), &secretsmanager.PutSecretValueInput{SecretId: aws.String(r.ID), SecretString: aws.String(v)})
			var missing *smtypes.ResourceNotFoundException
			if errors.As(err, &missing) {
				_, err = direct.CreateSecret(context.Background(), &secretsmanager.CreateSecretInput{Name: aws.String(r.ID), SecretString: aws.String(v)})
			}
			if err != nil {
				t.Fatal(err)
			}
		}
	})
}

func TestGetCachesAndFetchesOnce(t *testing.T) {
	each(t, func(t *testing.T, fake *rig, faults *faultproxy.Proxy, api *secretsmanager.Client) {
		fake.Put(`{"api_key":"k1","postback_token":"t1"}`)
		faults.SetDelay(100 * time.Millisecond)
		c := New(api, fake.ID, time.Minute)
		var wg sync.WaitGroup
		for range 20 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				v, err := c.Get(context.Background())
				if err != nil || v.APIKey != "k1" || v.PostbackToken != "t1" {
					t.Errorf("Get = %+v, %v", v, err)
				}
			}()
		}
		wg.Wait()
		if n := fake.Calls(); n != 1 {
			t.Errorf("20 concurrent Gets made %d fetches, want 1", n)
		}
		c.Get(context.Background())
		if n := fake.Calls(); n != 1 {
			t.Errorf("a cached Get fetched again (%d)", n)
		}
	})
}

func TestTTLAndStale(t *testing.T) {
	each(t, func(t *testing.T, fake *rig, faults *faultproxy.Proxy, api *secretsmanager.Client) {
		fake.Put(`{"api_key":"k1"}`)
		c := New(api, fake.ID, time.Minute)
		now := time.Now()
		c.now = func() time.Time { return now }
		if v, _ := c.Get(context.Background()); v.APIKey != "k1" {
			t.Fatal(v)
		}
		fake.Put(`{"api_key":"k2"}`)
		now = now.Add(2 * time.Minute)
		if v, _ := c.Get(context.Background()); v.APIKey != "k2" {
			t.Errorf("after the TTL Get = %q, want k2", v.APIKey)
		}
		faults.SetDown(true)
		now = now.Add(2 * time.Minute)
		if v, err := c.Get(context.Background()); err != nil || v.APIKey != "k2" {
			t.Errorf("refresh failing: Get = %q, %v; want the stale k2", v.APIKey, err)
		}
	})
}

func TestRefresh(t *testing.T) {
	each(t, func(t *testing.T, fake *rig, faults *faultproxy.Proxy, api *secretsmanager.Client) {
		fake.Put(`{"api_key":"old"}`)
		c := New(api, fake.ID, time.Hour)
		old, _ := c.Get(context.Background())
		fake.Put(`{"api_key":"new"}`)
		v, err := c.Refresh(context.Background(), old)
		if err != nil || v.APIKey != "new" {
			t.Fatalf("Refresh = %+v, %v", v, err)
		}
		calls := fake.Calls()
		// A second worker that saw the same rejection does not fetch again.
		if v, _ := c.Refresh(context.Background(), old); v.APIKey != "new" || fake.Calls() != calls {
			t.Errorf("second Refresh fetched again or returned %q", v.APIKey)
		}
	})
}

func TestErrors(t *testing.T) {
	tests := map[string]struct {
		setup     func(*rig, *faultproxy.Proxy)
		wantClass apperr.Class
	}{
		"down":     {func(_ *rig, p *faultproxy.Proxy) { p.SetDown(true) }, apperr.Retry},
		"missing":  {func(*rig, *faultproxy.Proxy) {}, apperr.Retry},
		"not JSON": {func(f *rig, _ *faultproxy.Proxy) { f.Put("plain-key") }, apperr.Config},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			each(t, func(t *testing.T, fake *rig, faults *faultproxy.Proxy, api *secretsmanager.Client) {
				tt.setup(fake, faults)
				_, err := New(api, fake.ID, time.Minute).Get(context.Background())
				if err == nil || apperr.ClassOf(err) != tt.wantClass {
					t.Errorf("Get error = %v (class %s), want class %s", err, apperr.ClassOf(err), tt.wantClass)
				}
			})
		})
	}
}

// TestFields: each function requires and keeps only the field it reads
// (the postback function must not hold the API key).
func TestFields(t *testing.T) {
	tests := []struct {
		name      string
		secret    string
		need      []Field
		want      Values
		wantClass apperr.Class // 0: no error
	}{
		{"postback, token-only secret", `{"postback_token":"t1"}`, []Field{PostbackToken}, Values{PostbackToken: "t1"}, 0},
		{"postback, shared local secret: the key is dropped", `{"api_key":"k1","postback_token":"t1"}`, []Field{PostbackToken}, Values{PostbackToken: "t1"}, 0},
		{"postback, key-only secret", `{"api_key":"k1"}`, []Field{PostbackToken}, Values{}, apperr.Config},
		{"postback, empty token", `{"postback_token":""}`, []Field{PostbackToken}, Values{}, apperr.Config},
		{"sender, key-only secret", `{"api_key":"k1"}`, []Field{APIKey}, Values{APIKey: "k1"}, 0},
		{"sender, shared local secret", `{"api_key":"k1","postback_token":"t1"}`, []Field{APIKey}, Values{APIKey: "k1"}, 0},
		{"sender, token-only secret", `{"postback_token":"t1"}`, []Field{APIKey}, Values{}, apperr.Config},
		{"no fields named: both kept", `{"api_key":"k1","postback_token":"t1"}`, nil, Values{APIKey: "k1", PostbackToken: "t1"}, 0},
		{"no fields named, neither present", `{"other":"x"}`, nil, Values{}, apperr.Config},
		{"not an object of strings", `{"api_key":5}`, []Field{APIKey}, Values{}, apperr.Config},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			each(t, func(t *testing.T, fake *rig, _ *faultproxy.Proxy, api *secretsmanager.Client) {
				fake.Put(tt.secret)
				got, err := New(api, fake.ID, time.Minute, tt.need...).Get(context.Background())
				if tt.wantClass != 0 {
					if err == nil || apperr.ClassOf(err) != tt.wantClass {
						t.Fatalf("Get() error = %v, want class %s", err, tt.wantClass)
					}
					if strings.Contains(err.Error(), "k1") || strings.Contains(err.Error(), "t1") {
						t.Errorf("error shows a secret value: %v", err)
					}
					return
				}
				if err != nil {
					t.Fatal(err)
				}
				if got != tt.want {
					t.Errorf("Get() = %+v, want %+v", got, tt.want)
				}
			})
		})
	}
}
