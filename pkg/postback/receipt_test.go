package postback

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/google/go-cmp/cmp"

	"github.com/mmsgate/mmsgate/pkg/receipt"
	"github.com/mmsgate/mmsgate/pkg/store"
)

// fakeReceiptQueue is the receipt queue as receipt.Scheduler sees it.
type fakeReceiptQueue struct {
	mu     sync.Mutex
	bodies []string
	fail   func() error
}

func (q *fakeReceiptQueue) SendMessage(_ context.Context, in *sqs.SendMessageInput, _ ...func(*sqs.Options)) (*sqs.SendMessageOutput, error) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.fail != nil {
		if err := q.fail(); err != nil {
			return nil, err
		}
	}
	q.bodies = append(q.bodies, aws.ToString(in.MessageBody))
	return &sqs.SendMessageOutput{}, nil
}

func (q *fakeReceiptQueue) checks(t *testing.T) []string {
	t.Helper()
	q.mu.Lock()
	defer q.mu.Unlock()
	var out []string
	for _, b := range q.bodies {
		c, _, err := receipt.Decode([]byte(b))
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, c.ID+":"+c.TrackingID)
	}
	return out
}

// TestReceiptCheckScheduled: the postback function schedules the receipt
// check of an acceptance it records or publishes (an in-doubt request a
// postback proves accepted, a sender that died after recording it), just
// before the accepted event; not for a rejected request, nor for a
// request whose accepted event is out already. When the check cannot be
// scheduled the accepted event stays pending (503), and the retry
// publishes it and schedules again.
func TestReceiptCheckScheduled(t *testing.T) {
	ctx := context.Background()
	hs := newHarness(t)
	q := &fakeReceiptQueue{}
	hs.h.d.Receipts, hs.h.d.ReceiptWindow = receipt.NewScheduler(q, "receipt-queue"), 24*time.Hour

	claim := func(id string) {
		if _, _, err := hs.store.Claim(ctx, id, store.Claim{Owner: "sender", Lease: hs.now().Add(time.Minute)}); err != nil {
			t.Fatal(err)
		}
	}
	tests := []struct {
		name       string
		setup      func(t *testing.T)
		body       string
		fail       bool // the receipt queue refuses the first send
		wantStatus int
		want       []string
		wantChecks []string
	}{
		{name: "in doubt, accepted by the postback", setup: func(t *testing.T) {
			claim("rc-a")
			hs.store.Doubt(ctx, "rc-a", "sender", hs.now().Add(15*time.Minute), store.Outcome{Code: "TIMEOUT"})
		}, body: pbXML("N101", "T-rc-a", "rc-a"), wantStatus: 200,
			want: []string{"rc-a:accepted:", "rc-a:sent:N101"}, wantChecks: []string{"rc-a:T-rc-a"}},
		{name: "the sender died after recording the acceptance", setup: func(t *testing.T) {
			claim("rc-b")
			hs.store.Accept(ctx, "rc-b", "sender", hs.now().Add(-time.Second), store.Outcome{TrackingID: "T-rc-b"})
		}, body: pbXML("N101", "T-rc-b", "rc-b"), wantStatus: 200,
			want: []string{"rc-b:accepted:", "rc-b:sent:N101"}, wantChecks: []string{"rc-b:T-rc-b"}},
		{name: "the sender died after recording a rejection: no check", setup: func(t *testing.T) {
			claim("rc-c")
			hs.store.Reject(ctx, "rc-c", "sender", hs.now().Add(-time.Second), store.Outcome{Code: "E110"})
		}, body: pbXML("N101", "T-rc-c", "rc-c"), wantStatus: 200,
			want: []string{"rc-c:rejected:E110", "rc-c:sent:N101"}},
		{name: "accepted event out already: no check", setup: func(t *testing.T) {
			claim("rc-d")
			hs.store.Accept(ctx, "rc-d", "sender", hs.now().Add(time.Minute), store.Outcome{TrackingID: "T-rc-d"})
			hs.store.EventSent(ctx, "rc-d")
			hs.link(t, "T-rc-d", "rc-d")
		}, body: pbXML("N101", "T-rc-d", ""), wantStatus: 200, want: []string{"rc-d:sent:N101"}},
		{name: "the check cannot be scheduled: 503, accepted pending", setup: func(t *testing.T) {
			claim("rc-e")
			hs.store.Doubt(ctx, "rc-e", "sender", hs.now().Add(15*time.Minute), store.Outcome{Code: "TIMEOUT"})
		}, body: pbXML("N101", "T-rc-e", "rc-e"), fail: true, wantStatus: 503},
		{name: "its retry: scheduled, then published", body: pbXML("N101", "T-rc-e", "rc-e"), wantStatus: 200,
			want: []string{"rc-e:accepted:", "rc-e:sent:N101"}, wantChecks: []string{"rc-e:T-rc-e"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.setup != nil {
				tt.setup(t)
			}
			q.bodies = nil
			q.fail = nil
			if tt.fail {
				q.fail = func() error { return errors.New("receipt queue down") }
			}
			if resp := hs.invoke(t, post(tt.body)); resp.StatusCode != tt.wantStatus {
				t.Errorf("status %d, want %d", resp.StatusCode, tt.wantStatus)
			}
			if diff := cmp.Diff(tt.want, hs.events(t)); diff != "" {
				t.Errorf("events (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tt.wantChecks, q.checks(t)); diff != "" {
				t.Errorf("checks scheduled (-want +got):\n%s", diff)
			}
			if tt.fail {
				m, err := hs.store.Get(ctx, "rc-e")
				if err != nil || m.State != store.StateAccepted || m.PendingEvent != "accepted" || m.Held(hs.now()) {
					t.Errorf("record = %+v, %v; want accepted, the accepted event pending and released", m, err)
				}
			}
		})
	}
}
