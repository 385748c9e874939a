package postback

import (
	"context"
	"fmt"
	"os"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/mmsgate/mmsgate/pkg/delivery"
	"github.com/mmsgate/mmsgate/pkg/secret"
	"github.com/mmsgate/mmsgate/pkg/store"
)

// Function-field fakes: the benchmark measures the handler, not AWS.
type fakeTokens struct {
	GetFn func(context.Context) (secret.Values, error)
}

func (f fakeTokens) Get(ctx context.Context) (secret.Values, error) { return f.GetFn(ctx) }

type fakeRecords struct {
	PostbackFn         func(ctx context.Context, tid, key string, rank int, state, owner string, hold time.Time) (store.Decision, store.Joined, error)
	PostbackDoneFn     func(ctx context.Context, tid, key, owner string, settled delivery.About) error
	PostbackReleaseFn  func(ctx context.Context, tid, owner string) error
	GetFn              func(ctx context.Context, id string) (*store.Message, error)
	AcceptByPostbackFn func(ctx context.Context, id, tid, owner string, hold time.Time) (bool, *store.Message, error)
	TakeEventFn        func(ctx context.Context, id, owner string, hold time.Time) (bool, *store.Message, error)
	EventSentFn        func(ctx context.Context, id string) error
	ReleaseEventFn     func(ctx context.Context, id, owner string) error
	LinkFn             func(ctx context.Context, tid, id string, md map[string]string) error
}

func (f fakeRecords) Postback(ctx context.Context, tid, key string, rank int, state, owner string, hold time.Time) (store.Decision, store.Joined, error) {
	return f.PostbackFn(ctx, tid, key, rank, state, owner, hold)
}
func (f fakeRecords) PostbackDone(ctx context.Context, tid, key, owner string, settled delivery.About) error {
	return f.PostbackDoneFn(ctx, tid, key, owner, settled)
}
func (f fakeRecords) PostbackRelease(ctx context.Context, tid, owner string) error {
	return f.PostbackReleaseFn(ctx, tid, owner)
}
func (f fakeRecords) Get(ctx context.Context, id string) (*store.Message, error) {
	return f.GetFn(ctx, id)
}
func (f fakeRecords) AcceptByPostback(ctx context.Context, id, tid, owner string, hold time.Time) (bool, *store.Message, error) {
	return f.AcceptByPostbackFn(ctx, id, tid, owner, hold)
}
func (f fakeRecords) TakeEvent(ctx context.Context, id, owner string, hold time.Time) (bool, *store.Message, error) {
	return f.TakeEventFn(ctx, id, owner, hold)
}
func (f fakeRecords) EventSent(ctx context.Context, id string) error { return f.EventSentFn(ctx, id) }
func (f fakeRecords) ReleaseEvent(ctx context.Context, id, owner string) error {
	return f.ReleaseEventFn(ctx, id, owner)
}
func (f fakeRecords) Link(ctx context.Context, tid, id string, md map[string]string) error {
	return f.LinkFn(ctx, tid, id, md)
}

type fakePublisher struct {
	PublishFn func(context.Context, delivery.Event) error
}

func (f fakePublisher) Publish(ctx context.Context, e delivery.Event) error {
	return f.PublishFn(ctx, e)
}

var (
	_ tokenSource = fakeTokens{}
	_ records     = fakeRecords{}
	_ publisher   = fakePublisher{}
)

// memRecords decides like the store does, in memory.
func memRecords() fakeRecords {
	var mu sync.Mutex
	seen := map[string]bool{}
	return fakeRecords{
		// The hot path: a linked tracking id whose request is settled (no
		// read of msg#).
		PostbackFn: func(_ context.Context, tid, key string, _ int, _, _ string, _ time.Time) (store.Decision, store.Joined, error) {
			mu.Lock()
			defer mu.Unlock()
			j := store.Joined{ID: "id-" + tid, Settled: true}
			if seen[tid+key] {
				return store.Duplicate, j, nil
			}
			seen[tid+key] = true
			return store.Emit, j, nil
		},
		PostbackDoneFn: func(context.Context, string, string, string, delivery.About) error { return nil },
	}
}

// BenchmarkHandle: parse + classify + de-duplication decision + event, per
// postback, on one goroutine; reports postbacks/s and p50/p99 latency.
func BenchmarkHandle(b *testing.B) {
	body, err := os.ReadFile("testdata/n102-delivered.xml")
	if err != nil {
		b.Fatal(err)
	}
	h := NewHandler(Deps{
		Tokens:  fakeTokens{GetFn: func(context.Context) (secret.Values, error) { return secret.Values{PostbackToken: token}, nil }},
		Store:   memRecords(),
		Events:  fakePublisher{PublishFn: func(context.Context, delivery.Event) error { return nil }},
		Metrics: nil,
	})
	reqs := make([]string, 1024)
	for i := range reqs {
		reqs[i] = replaceTracking(string(body), fmt.Sprintf("T-%d", i))
	}
	lat := make([]time.Duration, 0, b.N)
	ctx := context.Background()
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		r := post(reqs[i%len(reqs)])
		start := time.Now()
		resp, _ := h.Handle(ctx, r)
		lat = append(lat, time.Since(start))
		if resp.StatusCode != 200 {
			b.Fatalf("status %d", resp.StatusCode)
		}
	}
	b.StopTimer()
	slices.Sort(lat)
	b.ReportMetric(float64(len(lat))/b.Elapsed().Seconds(), "postbacks/s")
	b.ReportMetric(float64(lat[len(lat)/2].Microseconds()), "p50-µs")
	b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds()), "p99-µs")
}

func replaceTracking(s, tid string) string {
	const old = "DrXAFP-Ylpc-JZL"
	for i := 0; i+len(old) <= len(s); i++ {
		if s[i:i+len(old)] == old {
			return s[:i] + tid + s[i+len(old):]
		}
	}
	return s
}
