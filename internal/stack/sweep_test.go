package stack_test

import (
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"

	"github.com/mmsgate/mmsgate/internal/localenv"
	"github.com/mmsgate/mmsgate/internal/sim"
	"github.com/mmsgate/mmsgate/internal/stack"
	"github.com/mmsgate/mmsgate/pkg/store"
)

// TestSweepRunsForReal: the built schedule-sweep bootstrap, under the
// runtime emulator, on dynalite's due index and the local SQS, puts a due
// scheduled request back on the send queue, delayed to its sendAt, and
// leaves one not yet due where it is.
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
	for id, at := range map[string]time.Time{"due-soon": now.Add(3 * time.Second), "due-later": now.Add(time.Hour)} {
		body := `{"id":"` + id + `","to":"17743199144","mmsId":48211}`
		if won, _, err := st.RecordSchedule(ctx, id, store.ScheduleRequest{Body: body, SendAt: at, Owner: "test", Hold: now.Add(time.Minute)}); !won || err != nil {
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
}
