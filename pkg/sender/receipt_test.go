package sender

import (
	"context"
	"errors"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/google/go-cmp/cmp"

	"github.com/mmsgate/mmsgate/internal/memdb"
	"github.com/mmsgate/mmsgate/pkg/apperr"
	"github.com/mmsgate/mmsgate/pkg/delivery"
	"github.com/mmsgate/mmsgate/pkg/recorded"
	"github.com/mmsgate/mmsgate/pkg/secret"
	"github.com/mmsgate/mmsgate/pkg/sendreq"
	"github.com/mmsgate/mmsgate/pkg/skycore"
	"github.com/mmsgate/mmsgate/pkg/store"
)

// Function-field fakes for the receipt-check hook tests (memdb, no Node).
type (
	fakeKeys    struct{}
	fakeSkycore struct {
		send func(r *sendreq.Request) (*skycore.Response, error)
	}
	fakeEvents struct {
		mu     sync.Mutex
		events []delivery.Event
	}
	fakeQueue    struct{}
	fakeReceipts struct {
		schedule func(id, trackingID string, due time.Time) error
	}
)

var (
	_ keySource         = fakeKeys{}
	_ api               = fakeSkycore{}
	_ publisher         = (*fakeEvents)(nil)
	_ queue             = fakeQueue{}
	_ recorded.Receipts = fakeReceipts{}
	_ records           = (*store.Store)(nil)
)

func (fakeKeys) Get(context.Context) (secret.Values, error) { return secret.Values{APIKey: "k"}, nil }
func (fakeKeys) Refresh(context.Context, secret.Values) (secret.Values, error) {
	return secret.Values{APIKey: "k"}, nil
}
func (f fakeSkycore) SendSavedMMS(_ context.Context, _ string, r *sendreq.Request) (*skycore.Response, error) {
	return f.send(r)
}
func (p *fakeEvents) Publish(_ context.Context, e delivery.Event) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.events = append(p.events, e)
	return nil
}
func (p *fakeEvents) count() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.events)
}
func (fakeQueue) ChangeMessageVisibility(context.Context, *sqs.ChangeMessageVisibilityInput, ...func(*sqs.Options)) (*sqs.ChangeMessageVisibilityOutput, error) {
	return &sqs.ChangeMessageVisibilityOutput{}, nil
}
func (fakeQueue) SendMessage(context.Context, *sqs.SendMessageInput, ...func(*sqs.Options)) (*sqs.SendMessageOutput, error) {
	return &sqs.SendMessageOutput{}, nil
}
func (f fakeReceipts) Schedule(_ context.Context, id, trackingID string, due time.Time) error {
	return f.schedule(id, trackingID, due)
}

// TestReceiptCheckScheduled: the sender schedules the receipt check of an
// accepted request (with or without a tracking id) just before its
// accepted event, and of nothing else; when the check cannot be
// scheduled the accepted event stays pending, and the next delivery
// publishes it and schedules again.
func TestReceiptCheckScheduled(t *testing.T) {
	const window = 24 * time.Hour
	type call struct {
		ID, TrackingID string
		EventsBefore   int // events published when it was scheduled
	}
	tests := map[string]struct {
		resp      *skycore.Response
		err       error
		window    time.Duration
		failFirst bool // the first Schedule fails
		want      []call
		wantKinds []string
	}{
		"accepted": {resp: &skycore.Response{Status: "Success", TrackingID: "T-1"}, window: window,
			want: []call{{"r", "T-1", 0}}, wantKinds: []string{"accepted"}},
		"accepted without a tracking id": {resp: &skycore.Response{Status: "Success"}, window: window,
			want: []call{{"r", "", 0}}, wantKinds: []string{"accepted"}},
		"rejected: no check": {err: &apperr.Error{Code: "E110", Class: apperr.Permanent, Message: "invalid number"}, window: window,
			wantKinds: []string{"rejected"}},
		"window 0: no check": {resp: &skycore.Response{Status: "Success", TrackingID: "T-1"},
			wantKinds: []string{"accepted"}},
		"scheduling fails: accepted stays pending, published by the next delivery": {
			resp: &skycore.Response{Status: "Success", TrackingID: "T-1"}, window: window, failFirst: true,
			want: []call{{"r", "T-1", 0}, {"r", "T-1", 0}}, wantKinds: []string{"accepted"}},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			db := memdb.New()
			if err := store.CreateTable(ctx, db, "mmsgate-messages"); err != nil {
				t.Fatal(err)
			}
			st := store.New(db, "mmsgate-messages", 0)
			evs := &fakeEvents{}
			var got []call
			var dues []time.Time
			h := NewHandler(Config{Policy: sendreq.Policy{DefaultFrom: "60856"}, ReceiptWindow: tt.window, SendQueueURL: "send"}, Deps{
				Keys: fakeKeys{}, Store: st, Events: evs, Queue: fakeQueue{},
				Skycore: fakeSkycore{send: func(*sendreq.Request) (*skycore.Response, error) { return tt.resp, tt.err }},
				Receipts: fakeReceipts{schedule: func(id, trk string, due time.Time) error {
					got = append(got, call{id, trk, evs.count()})
					dues = append(dues, due)
					if tt.failFirst && len(got) == 1 {
						return errors.New("receipt queue down")
					}
					return nil
				}},
			})
			rec := events.SQSMessage{MessageId: "m1", ReceiptHandle: "h1", Body: `{"id":"r","to":"17743199144","mmsId":1000}`,
				Attributes: map[string]string{"SentTimestamp": strconv.FormatInt(time.Now().UnixMilli(), 10), "ApproximateReceiveCount": "1"}}
			resp, err := h.Handle(ctx, events.SQSEvent{Records: []events.SQSMessage{rec}})
			if err != nil {
				t.Fatal(err)
			}
			if tt.failFirst {
				if len(resp.BatchItemFailures) != 1 || evs.count() != 0 {
					t.Fatalf("first delivery: failures %v, %d events; want the record back, no event", resp.BatchItemFailures, evs.count())
				}
				m, err := st.Get(ctx, "r")
				if err != nil || m.State != store.StateAccepted || m.PendingEvent != "accepted" || m.Held(time.Now()) {
					t.Fatalf("record = %+v, %v; want accepted, the accepted event pending and released", m, err)
				}
				rec.ReceiptHandle = "h2" // the next delivery
				if resp, err = h.Handle(ctx, events.SQSEvent{Records: []events.SQSMessage{rec}}); err != nil {
					t.Fatal(err)
				}
			}
			if len(resp.BatchItemFailures) != 0 {
				t.Errorf("failures %v", resp.BatchItemFailures)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("Schedule calls (-want +got):\n%s", diff)
			}
			for _, due := range dues {
				if d := time.Until(due); d < window-time.Minute || d > window {
					t.Errorf("due in %v, want the window %v from now", d, window)
				}
			}
			var kinds []string
			for _, e := range evs.events {
				kinds = append(kinds, e.Event)
			}
			if diff := cmp.Diff(tt.wantKinds, kinds); diff != "" {
				t.Errorf("events (-want +got):\n%s", diff)
			}
		})
	}
}
