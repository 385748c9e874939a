package sender

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/mmsgate/mmsgate/internal/localenv"
	"github.com/mmsgate/mmsgate/internal/ops"
	"github.com/mmsgate/mmsgate/pkg/store"
)

// TestRedriveOfDeadLetteredHandoff: Skycore accepted, DynamoDB refused the
// record for good, and the hand-off reached the DLQ. Once DynamoDB is
// fixed, `mmsgate redrive` (internal/ops, on the same queues) brings it
// back as a hand-off: the acceptance it carries is recorded, past the
// in-doubt and retry windows too, and the request is never sent again.
func TestRedriveOfDeadLetteredHandoff(t *testing.T) {
	// It waits on leases and windows: overlap it with the others.
	t.Parallel()
	for _, tc := range []struct {
		name  string
		strip bool // the DLQ message lost its hand-off (an older sender's move)
		want  string
	}{
		{"the signed hand-off is recorded", false, "redrive-1:accepted:"},
		{"without its hand-off, past the retry window: expired, not sent", true, "redrive-1:expired:INDOUBT"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			hs := newHarness(t, nil, func(c *Config) { c.InDoubtWindow = time.Second; c.RetryWindow = time.Hour })
			real := store.New(hs.db, localenv.Table, 0)
			hs.h.d.Store = refusing{real}
			body := `{"id":"redrive-1","to":"17743199144","mmsId":1000}`
			ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
			defer cancel()
			// First enqueued 2 h ago: its retry window is spent by the redrive.
			hs.mustInvoke(t, ctx, record(t, "orig", body, time.Now().Add(-2*time.Hour)), 0)
			handoffs := hs.drain(t, localenv.SendQueue)
			if len(handoffs) != 1 {
				t.Fatalf("send queue = %+v, want the signed hand-off", handoffs)
			}
			hs.mustInvoke(t, context.Background(), fromQueue(t, handoffs[0]), 0)
			dead := hs.peek(t, localenv.SendDLQ)
			if len(dead) != 1 || !strings.Contains(errorAttr(dead[0]), "accepted by Skycore") {
				t.Fatalf("DLQ = %+v", dead)
			}
			if _, ok := dead[0].MessageAttributes[HandoffMACAttr]; !ok && !tc.strip {
				t.Fatalf("the DLQ message lost its hand-off: %v", dead[0].MessageAttributes)
			}
			if tc.strip {
				hs.drain(t, localenv.SendDLQ)
				if _, err := hs.env.SendTo(context.Background(), localenv.SendDLQ, body, nil); err != nil {
					t.Fatal(err)
				}
			}

			// DynamoDB fixed; the first claim's lease and the doubt window over.
			hs.h.d.Store = real
			dl, _ := ctx.Deadline()
			time.Sleep(time.Until(dl) + 1100*time.Millisecond)
			time.Sleep(1100 * time.Millisecond) // the peek's visibility
			res, err := ops.Redrive(context.Background(), hs.env.SQSClient(), real,
				ops.RedriveOptions{DLQ: hs.env.DLQURL, To: hs.env.SendQueueURL, Wait: -1}, nil)
			if err != nil || res.Moved != 1 {
				t.Fatalf("redrive = %+v, %v; want 1 moved", res, err)
			}
			back := hs.drain(t, localenv.SendQueue)
			if len(back) != 1 {
				t.Fatalf("send queue after the redrive = %+v", back)
			}
			// Its dead claim turns into doubt (already over) at the first
			// delivery; the next one decides.
			for i := 0; ; i++ {
				resp, err := hs.invoke(t, context.Background(), fromQueue(t, back[0]))
				if err == nil && len(resp.BatchItemFailures) == 0 {
					break
				}
				if i == 2 {
					t.Fatalf("still redelivered: %+v, %v", resp, err)
				}
			}
			hs.mustInvoke(t, context.Background(), record(t, "dup", body, time.Now()), 0) // and a late copy
			if n := hs.sim.Counts().Received["redrive-1"]; n != 1 {
				t.Errorf("Skycore calls = %d, want 1", n)
			}
			if got := hs.kinds(t); !slices.Equal(got, []string{tc.want}) {
				t.Errorf("events = %v, want [%s]", got, tc.want)
			}
		})
	}
}
