package throttle

import (
	"context"
	"errors"
	"net/http/httptest"
	"testing"

	"github.com/mmsgate/mmsgate/internal/memdb"
	"github.com/mmsgate/mmsgate/internal/sim"
	"github.com/mmsgate/mmsgate/pkg/apperr"
	"github.com/mmsgate/mmsgate/pkg/sendreq"
	"github.com/mmsgate/mmsgate/pkg/skycore"
	"github.com/mmsgate/mmsgate/pkg/store"
)

func TestLanesOf(t *testing.T) {
	const bulkURL = "https://sqs.us-east-1.amazonaws.com/123456789012/mmsgate-BulkSendQueue-AbC"
	tests := []struct {
		name, bulk, arn string
		want            Lane
	}{
		{"bulk queue", bulkURL, "arn:aws:sqs:us-east-1:123456789012:mmsgate-BulkSendQueue-AbC", Bulk},
		{"send queue", bulkURL, "arn:aws:sqs:us-east-1:123456789012:mmsgate-SendQueue-XyZ", Transactional},
		{"a name that only ends like it", bulkURL, "arn:aws:sqs:us-east-1:123456789012:x-mmsgate-BulkSendQueue-AbC", Transactional},
		{"no bulk queue configured", "", "arn:aws:sqs:us-east-1:123456789012:mmsgate-BulkSendQueue-AbC", Transactional},
		{"no event source", bulkURL, "", Transactional},
		{"local queue URL", "http://127.0.0.1:4566/000000000000/mmsgate-send-bulk", "arn:aws:sqs:us-east-1:000000000000:mmsgate-send-bulk", Bulk},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := NewLanes(tt.bulk).Of(tt.arn); got != tt.want {
				t.Errorf("Of(%q) = %v, want %v", tt.arn, got, tt.want)
			}
		})
	}
	ctx := context.Background()
	if LaneOf(ctx) != Transactional || LaneOf(WithLane(ctx, Bulk)) != Bulk {
		t.Error("lane on the context")
	}
}

func TestRateFromEnv(t *testing.T) {
	for v, want := range map[string]float64{"": 0, "0": 0, "25": 25, " 12.5 ": 12.5} {
		got, err := RateFromEnv(func(string) string { return v })
		if err != nil || got != want {
			t.Errorf("%q: %v, %v; want %v", v, got, err, want)
		}
	}
	for _, v := range []string{"-1", "fast", "1e9"} {
		if _, err := RateFromEnv(func(string) string { return v }); err == nil {
			t.Errorf("%q accepted", v)
		}
	}
}

func request(t *testing.T, id string) *sendreq.Request {
	t.Helper()
	r, err := sendreq.Decode([]byte(`{"id": "` + id + `", "to": "17743199144", "from": "60856", "mmsId": 1000}`))
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// The gate against the simulator: an account whose real limit (10/s) is
// far under the configured one (1000/s) answers E113, and each E113 cuts
// the shared rate that every instance then reads.
func TestGateCutsOnE113(t *testing.T) {
	cfg := sim.Default()
	cfg.RateLimit = 10
	s, err := sim.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(s.Handler())
	t.Cleanup(func() { s.Close(); srv.Close() })
	db := newMemTable(t)
	l := New(db, table, Options{Limit: 1000})
	g := NewGate(skycore.New(srv.URL+sim.APIPath), l)
	var e113 int
	for i := range 30 {
		_, err := g.SendSavedMMS(context.Background(), "sim-api-key", request(t, "gate-"+string(rune('a'+i))))
		if apperr.CodeOf(err) == "E113" {
			e113++
		}
	}
	if e113 == 0 {
		t.Fatal("no E113 from a 10/s account at up to 960/s")
	}
	if got := l.Rate(); got >= 960 {
		t.Errorf("rate after %d E113 = %v, want it cut", e113, got)
	}
	other := New(db, table, Options{Limit: 1000})
	other.Reserve(context.Background(), Bulk) // its first lease reads the item
	if got := other.Rate(); got >= 960 {
		t.Errorf("another instance's rate = %v, want the shared cut", got)
	}
}

// No slot, no call: with DynamoDB down the gate makes no Skycore call and
// says so with a Retry-class error that is not "maybe sent".
func TestGateNoSlotNoCall(t *testing.T) {
	s, err := sim.New(sim.Default())
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(s.Handler())
	t.Cleanup(func() { s.Close(); srv.Close() })
	m := memdb.New()
	store.CreateTable(context.Background(), m, table)
	m.Fail(func(op, key string) error { return errors.New("down") })
	g := NewGate(skycore.New(srv.URL+sim.APIPath), New(m, table, Options{Limit: 10}))
	_, err = g.SendSavedMMS(context.Background(), "sim-api-key", request(t, "no-slot"))
	e, ok := apperr.As(err)
	if !ok || e.Class != apperr.Retry || skycore.MaybeSent(e) {
		t.Fatalf("err = %v, want a Retry error that is not maybe-sent", err)
	}
	if n := len(s.Requests()); n != 0 {
		t.Errorf("%d calls reached Skycore without a slot", n)
	}
}
