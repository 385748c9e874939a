package sender

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/mmsgate/mmsgate/pkg/apperr"
	"github.com/mmsgate/mmsgate/pkg/delivery"
	"github.com/mmsgate/mmsgate/pkg/outbox"
	"github.com/mmsgate/mmsgate/pkg/sendreq"
	"github.com/mmsgate/mmsgate/pkg/skycore"
)

// refusingEntries is the events queue refusing, once, the batch entries
// whose body names one of the ids (SendMessageBatch's partial failure);
// the other entries go through.
type refusingEntries struct {
	*sqs.Client
	mu     sync.Mutex
	refuse map[string]bool
}

func (r *refusingEntries) SendMessageBatch(ctx context.Context, in *sqs.SendMessageBatchInput, opts ...func(*sqs.Options)) (*sqs.SendMessageBatchOutput, error) {
	r.mu.Lock()
	var keep []sqstypes.SendMessageBatchRequestEntry
	var failed []sqstypes.BatchResultErrorEntry
	for _, e := range in.Entries {
		hit := ""
		for id := range r.refuse {
			if strings.Contains(aws.ToString(e.MessageBody), `"id":"`+id+`"`) {
				hit = id
			}
		}
		if hit != "" {
			delete(r.refuse, hit)
			failed = append(failed, sqstypes.BatchResultErrorEntry{Id: e.Id, Code: aws.String("InternalError"), SenderFault: false})
			continue
		}
		keep = append(keep, e)
	}
	r.mu.Unlock()
	out := &sqs.SendMessageBatchOutput{Failed: failed}
	if len(keep) > 0 {
		in2 := *in
		in2.Entries = keep
		res, err := r.Client.SendMessageBatch(ctx, &in2, opts...)
		if err != nil {
			return nil, err
		}
		out.Successful, out.Failed = res.Successful, append(out.Failed, res.Failed...)
	}
	return out, nil
}

// TestOutboxPartialFailure: SQS refuses some entries of a batch of events.
// Their records keep the event pending and come back; each request still
// ends in exactly one terminal event, the others' are not published again.
func TestOutboxPartialFailure(t *testing.T) {
	// It waits on leases and windows: overlap it with the others.
	t.Parallel()
	hs := newHarness(t, nil, nil)
	q := &refusingEntries{Client: hs.env.SQSClient(), refuse: map[string]bool{"pf-1": true, "pf-3": true}}
	box := outbox.New(q)
	hs.h.d.Outbox, hs.h.d.Events = box, delivery.NewPublisher(box, hs.env.EventsQueueURL)
	ev := events.SQSEvent{}
	for i := range 5 {
		ev.Records = append(ev.Records, record(t, fmt.Sprint("m", i), fmt.Sprintf(`{"id":"pf-%d","to":"17743199144","mmsId":1000}`, i), time.Now()).Records[0])
	}
	resp, err := hs.invoke(t, context.Background(), ev)
	if err != nil {
		t.Fatal(err)
	}
	if got := failed(resp); !slices.Equal(got, []string{"m1", "m3"}) {
		t.Errorf("failures = %v, want the refused events' records", got)
	}
	redo := events.SQSEvent{Records: []events.SQSMessage{ev.Records[1], ev.Records[3]}}
	if resp, err := hs.invoke(t, context.Background(), redo); err != nil || len(resp.BatchItemFailures) != 0 {
		t.Fatalf("redelivery = %+v, %v", resp, err)
	}
	hs.invoke(t, context.Background(), ev) // every body again: duplicates publish nothing
	want := []string{"pf-0:accepted:", "pf-1:accepted:", "pf-2:accepted:", "pf-3:accepted:", "pf-4:accepted:"}
	if got := hs.kinds(t); !slices.Equal(got, want) {
		t.Errorf("events = %v, want %v", got, want)
	}
	for i := range 5 {
		if n := hs.sim.Counts().Received[fmt.Sprint("pf-", i)]; n != 1 {
			t.Errorf("pf-%d sent %d times", i, n)
		}
	}
}

// TestSuppressedAlwaysRejected: a request retrying when its number is put on
// the suppression list (another request's E110) ends in rejected,
// suppressed, with no further call, and its redeliveries publish nothing
// more.
func TestSuppressedAlwaysRejected(t *testing.T) {
	hs := newHarness(t, nil, func(c *Config) { c.SuppressCodes, c.SuppressTTL = []string{"E110"}, time.Hour })
	calls := map[string]int{}
	var mu sync.Mutex
	hs.h.d.Skycore = apiFunc(func(_ context.Context, _ string, r *sendreq.Request) (*skycore.Response, error) {
		mu.Lock()
		calls[r.ID]++
		mu.Unlock()
		if r.ID == "sa-1" {
			return nil, &apperr.Error{Code: "E503", Class: apperr.Retry, Op: "skycore.SendSavedMMS", Message: "Internal error."}
		}
		return nil, &apperr.Error{Code: "E110", Class: apperr.Permanent, Op: "skycore.SendSavedMMS", Message: "Invalid receiver number."}
	})
	first := record(t, "m1", `{"id":"sa-1","to":"17745550110","mmsId":1000}`, time.Now())
	hs.mustInvoke(t, context.Background(), first, 1) // E503: retrying
	hs.mustInvoke(t, context.Background(), record(t, "m2", `{"id":"sa-2","to":"17745550110","mmsId":1000}`, time.Now()), 0)
	for range 2 {
		hs.mustInvoke(t, context.Background(), first, 0)
	}
	evs, _ := hs.env.DrainEvents()
	var got []string
	for _, e := range evs {
		got = append(got, fmt.Sprintf("%s:%s:%s:%v", e.ID, e.Event, e.Code, e.Suppressed))
	}
	slices.Sort(got)
	want := []string{"sa-1:rejected:E110:true", "sa-1:retrying:E503:false", "sa-2:rejected:E110:false"}
	if !slices.Equal(got, want) {
		t.Errorf("events = %v, want %v", got, want)
	}
	if calls["sa-1"] != 1 {
		t.Errorf("sa-1 called %d times after its number was suppressed, want 1 in all", calls["sa-1"])
	}
}
