package sender

import (
	"context"
	"encoding/json"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/mmsgate/mmsgate/internal/localenv"
	"github.com/mmsgate/mmsgate/pkg/sendreq"
	"github.com/mmsgate/mmsgate/pkg/skycore"
	"github.com/mmsgate/mmsgate/pkg/store"
)

// padded is a valid request of exactly n bytes: JSON whitespace before its
// closing brace.
func padded(t *testing.T, prefix string, n int) string {
	t.Helper()
	if len(prefix)+1 > n {
		t.Fatalf("prefix longer than %d", n)
	}
	return prefix + strings.Repeat(" ", n-len(prefix)-1) + "}"
}

// sqsSize is a received message's size as SQS counts it.
func sqsSize(m types.Message) int {
	return messageSize(*m.Body, m.MessageAttributes)
}

// TestLargestBodyFits: the largest body accepted still fits in SQS's limit
// with the attributes of every path that puts it on a queue again: the
// signed hand-off (with a tracking id as long as one is carried), the
// hand-off's move to the DLQ, an expired body's move. A larger one is
// refused at validation with a coded rejection, and a malformed one that
// leaves no room is still moved (with a shortened reason). The queues
// enforce the limit (fakesqs counts attributes as SQS does; moto the body,
// checked here too).
func TestLargestBodyFits(t *testing.T) {
	if MaxBodyBytes+max(DeadLetterOverhead, HandoffOverhead) != SQSMessageLimit {
		t.Fatalf("MaxBodyBytes %d leaves %d for attributes", MaxBodyBytes, SQSMessageLimit-MaxBodyBytes)
	}
	fits := func(t *testing.T, where string, m types.Message) {
		t.Helper()
		if n := sqsSize(m); n > SQSMessageLimit {
			t.Errorf("%s: a %d-byte message, over %d", where, n, SQSMessageLimit)
		}
	}
	t.Run("hand-off, then its move to the DLQ", func(t *testing.T) {
		hs := newHarness(t, nil, nil)
		hs.h.d.Store = refusing{store.New(hs.db, localenv.Table, 0)}
		// The longest tracking id a hand-off carries: JSON escapes each < in six bytes.
		trk := strings.Repeat("<", (MaxHandoffPayload-200)/6)
		var calls atomic.Int32
		hs.h.d.Skycore = apiFunc(func(ctx context.Context, _ string, r *sendreq.Request) (*skycore.Response, error) {
			calls.Add(1)
			return &skycore.Response{Status: "Success", TrackingID: trk, To: strings.Repeat("9", 15), From: "60856"}, nil
		})
		body := padded(t, `{"id":"big-1","to":"17743199144","mmsId":1000`, MaxBodyBytes)
		hs.mustInvoke(t, context.Background(), record(t, "orig", body, time.Now()), 0)
		handoffs := hs.drain(t, localenv.SendQueue)
		if len(handoffs) != 1 || *handoffs[0].Body != body {
			t.Fatalf("send queue = %d messages, want the hand-off", len(handoffs))
		}
		fits(t, "hand-off", handoffs[0])
		var ho handoff
		if err := json.Unmarshal([]byte(*handoffs[0].MessageAttributes[HandoffAttr].StringValue), &ho); err != nil || ho.TrackingID != trk {
			t.Fatalf("hand-off = %+v, %v; want the tracking id kept", ho, err)
		}
		hs.mustInvoke(t, context.Background(), fromQueue(t, handoffs[0]), 0)
		dead := hs.peek(t, localenv.SendDLQ)
		if len(dead) != 1 || *dead[0].Body != body {
			t.Fatalf("DLQ = %d messages, want the body", len(dead))
		}
		if _, ok := dead[0].MessageAttributes[HandoffMACAttr]; !ok || errorAttr(dead[0]) == "" {
			t.Errorf("DLQ attributes = %v, want the reason and the hand-off", dead[0].MessageAttributes)
		}
		fits(t, "hand-off in the DLQ", dead[0])
		if calls.Load() != 1 {
			t.Errorf("Skycore calls = %d, want 1", calls.Load())
		}
	})
	t.Run("expired, moved to the DLQ", func(t *testing.T) {
		hs := newHarness(t, nil, func(c *Config) { c.RetryWindow = time.Hour })
		body := padded(t, `{"id":"big-2","to":"17745550503","mmsId":1000`, MaxBodyBytes) // E503
		hs.mustInvoke(t, context.Background(), record(t, "m-big-2", body, time.Now().Add(-2*time.Hour)), 0)
		if got := hs.kinds(t); !slices.Equal(got, []string{"big-2:expired:E503"}) {
			t.Errorf("events = %v", got)
		}
		dead := hs.peek(t, localenv.SendDLQ)
		if len(dead) != 1 || *dead[0].Body != body || !strings.Contains(errorAttr(dead[0]), "expired") {
			t.Fatalf("DLQ = %d messages, want the expired body", len(dead))
		}
		fits(t, "expired body in the DLQ", dead[0])
	})
	t.Run("one byte more: rejected E100 at validation, never sent", func(t *testing.T) {
		hs := newHarness(t, nil, nil)
		body := padded(t, `{"id":"big-3","to":"17743199144","mmsId":1000`, MaxBodyBytes+1)
		hs.mustInvoke(t, context.Background(), record(t, "m-big-3", body, time.Now()), 0)
		if got := hs.kinds(t); !slices.Equal(got, []string{"big-3:rejected:E100"}) {
			t.Errorf("events = %v", got)
		}
		if n := hs.sim.Counts().Received["big-3"]; n != 0 {
			t.Errorf("Skycore calls = %d, want 0", n)
		}
	})
	t.Run("a malformed body that leaves no room: moved, its reason shortened", func(t *testing.T) {
		hs := newHarness(t, nil, nil)
		body := `{"junk": "` + strings.Repeat("x", SQSMessageLimit-100) + `"`
		hs.mustInvoke(t, context.Background(), record(t, "m-big-4", body, time.Now()), 0)
		dead := hs.peek(t, localenv.SendDLQ)
		for deadline := time.Now().Add(3 * time.Second); len(dead) == 0 && time.Now().Before(deadline); {
			// Under a loaded run (TestShortNeedsOnlyGo runs every package at
			// once) the one receive of a peek has come back empty once.
			time.Sleep(100 * time.Millisecond)
			dead = hs.peek(t, localenv.SendDLQ)
		}
		if len(dead) != 1 || *dead[0].Body != body {
			t.Fatalf("DLQ = %d messages, want the malformed body", len(dead))
		}
		fits(t, "malformed body in the DLQ", dead[0])
	})
}

// TestHandoffBounded: a tracking id too long to carry is dropped from the
// hand-off (accepted as NO_TRACKINGID), never making it too large to send.
func TestHandoffBounded(t *testing.T) {
	for _, trk := range []string{"T-1", strings.Repeat("A", 64<<10), strings.Repeat("<", 1000)} {
		b := handoff{TrackingID: trk, To: strings.Repeat("&", 5000), From: "60856", First: 1}.bounded()
		p, _ := json.Marshal(b)
		if len(p) > MaxHandoffPayload {
			t.Errorf("tracking id of %d bytes: payload %d, over %d", len(trk), len(p), MaxHandoffPayload)
		}
		if len(trk) < 100 && b.TrackingID != trk {
			t.Errorf("a short tracking id was dropped: %+v", b)
		}
	}
}
