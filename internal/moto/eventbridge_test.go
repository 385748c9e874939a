package moto_test

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/eventbridge"
	ebtypes "github.com/aws/aws-sdk-go-v2/service/eventbridge/types"
	"github.com/aws/aws-sdk-go-v2/service/sqs"

	"github.com/mmsgate/mmsgate/pkg/delivery"
	"github.com/mmsgate/mmsgate/pkg/outbox"
)

// countingBus counts PutEvents calls and their entries.
type countingBus struct {
	*eventbridge.Client
	calls, entries atomic.Int32
}

func (c *countingBus) PutEvents(ctx context.Context, in *eventbridge.PutEventsInput, opts ...func(*eventbridge.Options)) (*eventbridge.PutEventsOutput, error) {
	c.calls.Add(1)
	c.entries.Add(int32(len(in.Entries)))
	return c.Client.PutEvents(ctx, in, opts...)
}

// TestEventBridgeOutbox: one batch's events through the outbox on moto's
// EventBridge: twelve publications make two PutEvents calls, and a rule
// delivers each event once, the same as the events queue carries.
func TestEventBridgeOutbox(t *testing.T) {
	ctx := t.Context()
	c := sqsClient()
	events, _ := queue(t, c, 30, "", 0)
	ruleQueue, ruleARN := queue(t, c, 30, "", 0)
	eb := eventbridge.NewFromConfig(cfg(), func(o *eventbridge.Options) { o.BaseEndpoint = aws.String(server.URL); o.RetryMaxAttempts = 1 })
	bus := fmt.Sprintf("apps%d", time.Now().UnixNano())
	if _, err := eb.CreateEventBus(ctx, &eventbridge.CreateEventBusInput{Name: aws.String(bus)}); err != nil {
		t.Fatal(err)
	}
	if _, err := eb.PutRule(ctx, &eventbridge.PutRuleInput{Name: aws.String("all"), EventBusName: aws.String(bus),
		EventPattern: aws.String(`{"source":["mmsgate"]}`)}); err != nil {
		t.Fatal(err)
	}
	if _, err := eb.PutTargets(ctx, &eventbridge.PutTargetsInput{Rule: aws.String("all"), EventBusName: aws.String(bus),
		Targets: []ebtypes.Target{{Id: aws.String("q"), Arn: aws.String(ruleARN)}}}); err != nil {
		t.Fatal(err)
	}
	counting := &countingBus{Client: eb}
	box := outbox.New(c).WithBus(counting)
	box.Linger = time.Minute // only "everyone waits" flushes
	p := delivery.NewPublisher(box, events).WithBus(box, bus)
	const n = 12
	group := box.Group(ctx)
	var ctxs []context.Context
	var leaves []func()
	for range n {
		jc, leave := box.Join(group)
		ctxs, leaves = append(ctxs, jc), append(leaves, leave)
	}
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			defer leaves[i]()
			ev := delivery.New(delivery.Accepted, delivery.About{ID: fmt.Sprintf("ob-%02d", i), To: "17743199144"}, time.Now())
			if err := p.Publish(ctxs[i], ev); err != nil {
				t.Errorf("publish %d: %v", i, err)
			}
		})
	}
	wg.Wait()
	if calls, entries := counting.calls.Load(), counting.entries.Load(); calls != 2 || entries != n {
		t.Errorf("%d PutEvents calls of %d entries in all, want 2 of %d", calls, entries, n)
	}
	ids := func(url string, detail bool) []string {
		var out []string
		for len(out) < n {
			r, err := c.ReceiveMessage(ctx, &sqs.ReceiveMessageInput{QueueUrl: aws.String(url), MaxNumberOfMessages: 10, WaitTimeSeconds: 1})
			if err != nil {
				t.Fatal(err)
			}
			if len(r.Messages) == 0 {
				break
			}
			for _, m := range r.Messages {
				body := []byte(aws.ToString(m.Body))
				if detail {
					var env struct{ Detail json.RawMessage }
					json.Unmarshal(body, &env)
					body = env.Detail
				}
				var e delivery.Event
				json.Unmarshal(body, &e)
				out = append(out, e.ID)
			}
		}
		slices.Sort(out)
		return out
	}
	queued, onBus := ids(events, false), ids(ruleQueue, true)
	if len(queued) != n || !slices.Equal(queued, onBus) {
		t.Errorf("events queue %v, bus rule's queue %v; want the %d ids once each on both", queued, onBus, n)
	}
}
