package receipt

import (
	"context"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
)

// FuzzCheck: whatever a writer of the receipt queue puts there, the
// function never panics, and no body makes unconfirmed go out before the
// record's due: the one request here was accepted a minute ago with a
// 20-minute window, every other id has no record.
func FuzzCheck(f *testing.F) {
	for _, s := range []string{`{"id":"a","trackingId":"T-a","due":"2026-01-01T00:00:00.000Z"}`, `{`, `{"id":""}`,
		`{"id":"a","due":"0001-01-01T00:00:00Z"}`, `{"id":"b","trackingId":"T-a","due":"2000-01-01T00:00:00Z"}`,
		`{"id":"a","trackingId":"","due":"1999-01-01T00:00:00.000Z","extra":1}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		r := newRig(t)
		r.accept(t, "a", "T-a", 20*time.Minute)
		r.clock.add(time.Minute)
		ev := events.SQSEvent{Records: []events.SQSMessage{{MessageId: "m", Body: string(body)}}}
		if _, err := r.h.Handle(context.Background(), ev); err != nil {
			t.Fatal(err)
		}
		if got := r.pub.kinds(); len(got) != 1 {
			t.Fatalf("body %q: events %v; want only the accepted one", body, got)
		}
	})
}
