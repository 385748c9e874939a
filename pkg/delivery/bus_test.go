package delivery

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/eventbridge"
	ebtypes "github.com/aws/aws-sdk-go-v2/service/eventbridge/types"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/google/go-cmp/cmp"

	"github.com/mmsgate/mmsgate/pkg/apperr"
)

type fakeQueue struct{ bodies []string }

func (q *fakeQueue) SendMessage(_ context.Context, in *sqs.SendMessageInput, _ ...func(*sqs.Options)) (*sqs.SendMessageOutput, error) {
	q.bodies = append(q.bodies, aws.ToString(in.MessageBody))
	return &sqs.SendMessageOutput{}, nil
}

type fakeBus struct {
	entries []ebtypes.PutEventsRequestEntry
	err     error
	refuse  bool
}

func (b *fakeBus) PutEvents(_ context.Context, in *eventbridge.PutEventsInput, _ ...func(*eventbridge.Options)) (*eventbridge.PutEventsOutput, error) {
	if b.err != nil {
		return nil, b.err
	}
	if b.refuse {
		return &eventbridge.PutEventsOutput{FailedEntryCount: 1, Entries: []ebtypes.PutEventsResultEntry{{ErrorCode: aws.String("InternalFailure")}}}, nil
	}
	b.entries = append(b.entries, in.Entries...)
	return &eventbridge.PutEventsOutput{}, nil
}

// TestPublishOnBus: with a bus, every event goes on it too, source
// mmsgate, detail-type its kind, detail the very JSON the queue carries;
// a bus that fails fails the publish before the queue is written (it is
// retried whole, so the queue never carries it twice), and without a bus
// name nothing is put.
func TestPublishOnBus(t *testing.T) {
	ev := New(Accepted, About{ID: "bus-1", TrackingID: "T1", To: "17743199144"}, time.Date(2026, 12, 4, 17, 0, 0, 0, time.UTC))
	t.Run("on the bus", func(t *testing.T) {
		q, b := &fakeQueue{}, &fakeBus{}
		if err := NewPublisher(q, "q").WithBus(b, "apps").Publish(context.Background(), ev); err != nil {
			t.Fatal(err)
		}
		if len(q.bodies) != 1 || len(b.entries) != 1 {
			t.Fatalf("queue %d, bus %d messages; want one each", len(q.bodies), len(b.entries))
		}
		got := b.entries[0]
		want := ebtypes.PutEventsRequestEntry{EventBusName: aws.String("apps"), Source: aws.String("mmsgate"),
			DetailType: aws.String(Accepted), Detail: aws.String(q.bodies[0])}
		if diff := cmp.Diff(want, got, cmp.AllowUnexported(ebtypes.PutEventsRequestEntry{})); diff != "" {
			t.Errorf("entry (-want +got):\n%s", diff)
		}
	})
	for name, b := range map[string]*fakeBus{"bus down": {err: errors.New("down")}, "entry refused": {refuse: true}} {
		t.Run(name, func(t *testing.T) {
			q := &fakeQueue{}
			err := NewPublisher(q, "q").WithBus(b, "apps").Publish(context.Background(), ev)
			if e, ok := apperr.As(err); !ok || e.Class != apperr.Retry {
				t.Errorf("err = %v, want a Retry error", err)
			}
			// The bus comes first: the publication retried, the queue
			// would carry the event twice had it been written.
			if len(q.bodies) != 0 {
				t.Errorf("the queue got %d events though the bus failed", len(q.bodies))
			}
		})
	}
	t.Run("no bus name", func(t *testing.T) {
		q, b := &fakeQueue{}, &fakeBus{}
		if err := NewPublisher(q, "q").WithBus(b, "").Publish(context.Background(), ev); err != nil || len(b.entries) != 0 || len(q.bodies) != 1 {
			t.Errorf("err %v, bus %d, queue %d; want only the queue", err, len(b.entries), len(q.bodies))
		}
	})
}
