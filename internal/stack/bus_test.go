package stack_test

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/google/go-cmp/cmp"

	"github.com/mmsgate/mmsgate/internal/localenv"
	"github.com/mmsgate/mmsgate/internal/sim"
	"github.com/mmsgate/mmsgate/internal/stack"
	"github.com/mmsgate/mmsgate/pkg/delivery"
)

// TestEventBus: with an event bus, the built functions under the runtime
// emulator put every event on it too (moto's EventBridge), and an
// application's rule delivers them to its queue: the same events as the
// delivery-events queue, each with source mmsgate and its kind as
// detail-type.
func TestEventBus(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the real binaries on moto")
	}
	root, err := stack.Root()
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	bins, err := stack.Build(ctx, root)
	if err != nil {
		t.Fatal(err)
	}
	s, err := stack.Start(ctx, bins, stack.Options{Sim: sim.Default(), Timeout: 10 * time.Second, EventBus: true})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	for _, body := range []string{
		`{"id":"bus-ok","to":"17743199144","mmsId":1000}`, // accepted, then the postback function's receipts
		`{"id":"bus-bad","to":"1","mmsId":1000}`,          // rejected
	} {
		if err := s.Enqueue(body); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Pump(ctx, nil); err != nil {
		t.Fatal(err)
	}
	queued := s.Events()
	var kinds []string
	for _, e := range queued {
		kinds = append(kinds, e.ID+":"+e.Event)
	}
	if !slices.Contains(kinds, "bus-ok:accepted") || !slices.Contains(kinds, "bus-bad:rejected") || !slices.ContainsFunc(kinds, func(k string) bool {
		return strings.HasPrefix(k, "bus-ok:") && delivery.Receipt(strings.TrimPrefix(k, "bus-ok:"))
	}) {
		t.Fatalf("events on the queue = %v; want an acceptance, receipts and a rejection", kinds)
	}
	msgs, err := s.Env.ReceiveAll(ctx, s.Env.BusQueueURL, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	var onBus []delivery.Event
	for _, m := range msgs {
		bm, err := localenv.ParseBusMessage(aws.ToString(m.Body))
		if err != nil {
			t.Fatal(err)
		}
		e := bm.Event
		if bm.Source != "mmsgate" || bm.DetailType != e.Event {
			t.Errorf("source %q, detail-type %q for a %s event", bm.Source, bm.DetailType, e.Event)
		}
		onBus = append(onBus, e)
	}
	key := func(a, b delivery.Event) int {
		return strings.Compare(a.ID+a.Event+a.RecordedAt, b.ID+b.Event+b.RecordedAt)
	}
	slices.SortFunc(queued, key)
	slices.SortFunc(onBus, key)
	if diff := cmp.Diff(queued, onBus); diff != "" {
		t.Errorf("the rule's queue (+) differs from the delivery-events queue (-):\n%s", diff)
	}
}
