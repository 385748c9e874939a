package sender

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/mmsgate/mmsgate/pkg/apperr"
	"github.com/mmsgate/mmsgate/pkg/delivery"
	"github.com/mmsgate/mmsgate/pkg/sendreq"
	"github.com/mmsgate/mmsgate/pkg/skycore"
	"github.com/mmsgate/mmsgate/pkg/store"
)

// lateRetrying is the sender's publisher when SQS takes its retrying event
// in the last moment of the claim's lease and the answer is lost with the
// invocation's end: at that moment (just past the lease) a postback
// carrying the request's CLIENT_REFERENCE arrives (at), and only then does
// the retrying event land on the queue.
type lateRetrying struct {
	*attackLog
	at func()
}

func (p *lateRetrying) Publish(ctx context.Context, e delivery.Event) error {
	if e.Event != delivery.Retrying {
		return p.attackLog.Publish(ctx, e)
	}
	<-ctx.Done()                      // the invocation's deadline: the claim's lease
	time.Sleep(20 * time.Millisecond) // just past it
	p.at()
	p.mu.Lock()
	p.evs = append(p.evs, e) // SQS took it after all
	p.mu.Unlock()
	return ctx.Err()
}

// TestRetryingNeverFollowsAccepted: the call times out (in doubt) and the
// sender's retrying event is still on its way when its claim's lease ends;
// a postback with the request's CLIENT_REFERENCE proves the acceptance
// right then. The postback does not take over a claim within
// store.LeaseGrace of its end (answered 503, Skycore retries), so its
// accepted event comes after the retrying one, whichever function
// publishes first.
func TestRetryingNeverFollowsAccepted(t *testing.T) {
	hs := newHarness(t, nil, func(c *Config) { c.InDoubtWindow = time.Minute; c.MinCall = 100 * time.Millisecond })
	log := newAttackLog(hs.h.d.Events)
	deliver := postbackTo(t, hs, log)
	var first int
	hs.h.d.Events = &lateRetrying{attackLog: log, at: func() { first = deliver("N101", "TRK-LATE", "late-1") }}
	hs.h.d.Skycore = apiFunc(func(context.Context, string, *sendreq.Request) (*skycore.Response, error) {
		return nil, &apperr.Error{Code: apperr.CodeTimeout, Class: apperr.Retry, Op: "skycore.SendSavedMMS", Message: "no answer"}
	})
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	hs.invoke(t, ctx, record(t, "m", `{"id":"late-1","to":"17743199144","mmsId":1000}`, time.Now()))
	if first == 200 {
		t.Errorf("the postback recorded the acceptance %s after the lease ended, while the sender's retrying could still land", 20*time.Millisecond)
	}
	time.Sleep(store.LeaseGrace) // Skycore retries the postback
	if status := deliver("N101", "TRK-LATE", "late-1"); status != 200 {
		t.Fatalf("postback retry answered %d", status)
	}
	got := log.of("late-1")
	if strings.Join(got, ",") != "retrying,accepted,sent" {
		t.Errorf("events %v, want retrying, accepted, sent", got)
	}
}
