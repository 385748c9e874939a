package stack_test

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/google/go-cmp/cmp"

	"github.com/mmsgate/mmsgate/internal/localenv"
	"github.com/mmsgate/mmsgate/internal/sim"
	"github.com/mmsgate/mmsgate/internal/stack"
	"github.com/mmsgate/mmsgate/pkg/store"
)

// TestSweepRunsForReal: the built schedule-sweep bootstrap, under the
// runtime emulator, on dynalite's due index and the local SQS, puts a due
// scheduled request back on the send queue (a bulk one on the bulk queue),
// delayed to its sendAt, and leaves one not yet due where it is.
func TestSweepRunsForReal(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the real binaries")
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
	s, err := stack.Start(ctx, bins, stack.Options{Sim: sim.Default(), Timeout: 10 * time.Second, InProcess: true})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	st := store.New(s.Env.DynamoDB(), localenv.Table, 0)
	now := time.Now()
	for id, at := range map[string]time.Time{"due-soon": now.Add(3 * time.Second), "due-later": now.Add(time.Hour), "due-bulk": now.Add(3 * time.Second)} {
		body := `{"id":"` + id + `","to":"17743199144","mmsId":48211}`
		lane := "" // as the sender records a request that came on the bulk queue
		if id == "due-bulk" {
			lane = "bulk"
		}
		if won, _, err := st.RecordSchedule(ctx, id, store.ScheduleRequest{Body: body, SendAt: at, Lane: lane, Owner: "test", Hold: now.Add(time.Minute)}); !won || err != nil {
			t.Fatalf("RecordSchedule(%s) = %v, %v", id, won, err)
		}
		if err := st.ScheduledEventSent(ctx, id); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Sweep(ctx); err != nil {
		t.Fatal(err)
	}
	m, err := st.Get(ctx, "due-soon")
	if err != nil || m.State != store.StateRetry {
		t.Fatalf("due-soon after the sweep = %+v, %v", m, err)
	}
	if m, _ := st.Get(ctx, "due-later"); m.State != store.StateScheduled {
		t.Fatalf("due-later after the sweep = %+v", m)
	}
	// Delayed until its sendAt: not visible at once, visible after it.
	if msgs, _ := s.Env.ReceiveAll(ctx, s.Env.SendQueueURL, time.Minute); len(msgs) != 0 {
		t.Fatalf("%d messages visible before sendAt", len(msgs))
	}
	time.Sleep(time.Until(now.Add(5 * time.Second)))
	msgs, err := s.Env.ReceiveAll(ctx, s.Env.SendQueueURL, time.Minute)
	if err != nil || len(msgs) != 1 || aws.ToString(msgs[0].Body) != `{"id":"due-soon","to":"17743199144","mmsId":48211}` {
		t.Fatalf("send queue after sendAt: %d messages, %v", len(msgs), err)
	}
	// The bulk request back on the bulk queue, never on the transactional one.
	msgs, err = s.Env.ReceiveAll(ctx, s.Env.BulkSendQueueURL, time.Minute)
	if err != nil || len(msgs) != 1 || aws.ToString(msgs[0].Body) != `{"id":"due-bulk","to":"17743199144","mmsId":48211}` {
		t.Fatalf("bulk send queue after sendAt: %d messages, %v", len(msgs), err)
	}
}

// TestPumpRunsTheSchedule: `make run` and the soak's Pump run the sweeper
// and wait for scheduled requests rather than taking a send queue empty of
// them for a drained one: a request a few seconds ahead is called at its
// sendAt, not before; one an hour ahead and canceled ends canceled with no
// call; one whose expiresAt has passed ends expired with no call.
func TestPumpRunsTheSchedule(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the real binaries")
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
	s, err := stack.Start(ctx, bins, stack.Options{Sim: sim.Default(), Timeout: 10 * time.Second, InProcess: true})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	now := time.Now()
	sendAt := now.Add(4 * time.Second).Truncate(time.Second)
	for _, body := range []string{
		`{"id":"soon","to":"17743199144","mmsId":1000,"sendAt":"` + sendAt.Format(time.RFC3339) + `"}`,
		`{"id":"cx","to":"17743199144","mmsId":1000,"sendAt":"` + now.Add(time.Hour).Format(time.RFC3339) + `"}`,
		`{"id":"cx","cancel":true}`,
		`{"id":"old","to":"17743199144","mmsId":1000,"expiresAt":"` + now.Add(-time.Minute).Format(time.RFC3339) + `"}`,
	} {
		if err := s.Enqueue(body); err != nil {
			t.Fatal(err)
		}
	}
	pctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	if err := s.Pump(pctx, nil); err != nil {
		t.Fatal(err)
	}
	got := map[string][]string{}
	for _, e := range s.Events() {
		got[e.ID] = append(got[e.ID], e.Event+":"+e.Code)
	}
	want := map[string][]string{"soon": {"scheduled:", "accepted:", "sent:N101", "delivered:N102"}, "old": {"expired:EXPIRES_AT"}}
	for id, evs := range want {
		if diff := cmp.Diff(evs, got[id]); diff != "" {
			t.Errorf("%s's events (-want +got):\n%s", id, diff)
		}
	}
	if evs := got["cx"]; len(evs) == 0 || evs[len(evs)-1] != "canceled:" || slices.Contains(evs, "accepted:") {
		t.Errorf("cx's events %v; want canceled last", evs)
	}
	calls := 0
	for _, r := range s.Sim.Requests() {
		switch r.ClientReference {
		case "soon":
			calls++
			if r.Time.Before(sendAt) {
				t.Errorf("soon called at %v, before its sendAt %v", r.Time, sendAt)
			}
		case "cx", "old":
			t.Errorf("%s was called", r.ClientReference)
		}
	}
	if calls != 1 {
		t.Errorf("soon called %d times", calls)
	}
}
