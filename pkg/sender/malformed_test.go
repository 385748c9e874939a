package sender

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"

	"github.com/mmsgate/mmsgate/internal/localenv"
)

// TestMalformedPaths: what a body that cannot be sent as it is ends in.
func TestMalformedPaths(t *testing.T) {
	t.Run("invalid id: DLQ on each delivery, never an event", func(t *testing.T) {
		hs := newHarness(t, nil, nil)
		ev := record(t, "m", `{"id":"`+strings.Repeat("x", 65)+`","to":"17743199144","mmsId":1000}`, time.Now())
		for range 3 { // redeliveries and redrives of the same body
			hs.mustInvoke(t, context.Background(), ev, 0)
		}
		if got := hs.kinds(t); len(got) != 0 {
			t.Errorf("events = %v, want none (no record to de-duplicate against)", got)
		}
		if dlq := hs.peek(t, localenv.SendDLQ); len(dlq) != 3 {
			t.Errorf("DLQ holds %d, want 3", len(dlq))
		}
	})
	t.Run("readable id nested too deep: one rejected through the record", func(t *testing.T) {
		hs := newHarness(t, nil, nil)
		deep := strings.Repeat("[", 10001) + strings.Repeat("]", 10001)
		ev := record(t, "m", `{"id":"deep-1","to":"17743199144","mmsId":1000,"data":{"k":`+deep+`}}`, time.Now())
		for range 2 {
			hs.mustInvoke(t, context.Background(), ev, 0)
		}
		evs, _ := hs.env.DrainEvents()
		if len(evs) != 1 || evs[0].ID != "deep-1" || evs[0].Event != "rejected" || evs[0].Code != "E100" ||
			strings.Contains(evs[0].Error, "is required") {
			t.Errorf("events = %+v, want one rejected E100 naming only the body's fault", evs)
		}
		if n := len(hs.sim.Requests()); n != 0 {
			t.Errorf("%d calls, want none", n)
		}
	})
	t.Run("defaults apply before the reason is written", func(t *testing.T) {
		// SKYCORE_DEFAULT_FROM is set: a body without from is not missing it.
		hs := newHarness(t, nil, nil)
		hs.mustInvoke(t, context.Background(), record(t, "m", `{"id":"`+strings.Repeat("y", 65)+`","to":"17743199144","mmsId":1000}`, time.Now()), 0)
		dlq := hs.peek(t, localenv.SendDLQ)
		if len(dlq) != 1 {
			t.Fatalf("DLQ holds %d, want 1", len(dlq))
		}
		reason := aws.ToString(dlq[0].MessageAttributes["error"].StringValue)
		if strings.Contains(reason, "from") || !strings.Contains(reason, "id") {
			t.Errorf("reason %q: want the id's fault only", reason)
		}
	})
}
