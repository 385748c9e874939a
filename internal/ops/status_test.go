package ops_test

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/mmsgate/mmsgate/internal/ops"
	"github.com/mmsgate/mmsgate/pkg/delivery"
	"github.com/mmsgate/mmsgate/pkg/postback"
	"github.com/mmsgate/mmsgate/pkg/store"
)

const (
	lease  = 30 * time.Second
	window = 15 * time.Minute // SEND_INDOUBT_WINDOW
)

// The steps below drive the store as the sender and the postback function
// do (pkg/sender, pkg/postback), so that the records are real ones.

// claim is a delivery of the SQS message claiming id at offset d.
func (f *fixture) claim(t *testing.T, d time.Duration, id, owner string) *store.Message {
	t.Helper()
	f.clock.at(d)
	ok, m, err := f.st.Claim(context.Background(), id, store.Claim{Owner: owner, Lease: f.clock.in(lease), First: t0, InDoubt: window})
	if err != nil || !ok {
		t.Fatalf("Claim(%s, %s) = %v, %+v, %v", id, owner, ok, m, err)
	}
	return m
}

// schedule is a request taken in at offset d with its sendAt ahead by,
// recorded and its scheduled event published, as the sender does.
func (f *fixture) schedule(t *testing.T, d time.Duration, id string, ahead time.Duration) {
	t.Helper()
	ctx := context.Background()
	f.clock.at(d)
	won, _, err := f.st.RecordSchedule(ctx, id, store.ScheduleRequest{Body: `{"id":"` + id + `"}`, SendAt: f.clock.in(ahead),
		To: "17743199144", From: "60856", MMSID: "48211", Owner: "f6/req-1", Hold: f.clock.in(lease)})
	if !won || err != nil {
		t.Fatalf("RecordSchedule(%s) = %v, %v", id, won, err)
	}
	if err := f.st.ScheduledEventSent(ctx, id); err != nil {
		t.Fatal(err)
	}
}

// retry is an attempt that surely failed with code.
func (f *fixture) retry(t *testing.T, d time.Duration, id, owner, code string) {
	t.Helper()
	m := f.claim(t, d, id, owner)
	f.clock.at(d + 400*time.Millisecond)
	if ok, err := f.st.Release(context.Background(), id, owner, store.Outcome{Attempt: m.Attempts, Code: code}); !ok || err != nil {
		t.Fatalf("Release(%s) = %v, %v", id, ok, err)
	}
}

// accept is an attempt that Skycore accepted with tracking id tid; the
// sender links the tracking id and publishes the accepted event.
func (f *fixture) accept(t *testing.T, d time.Duration, id, owner, tid string) {
	t.Helper()
	ctx := context.Background()
	m := f.claim(t, d, id, owner)
	f.clock.at(d + 600*time.Millisecond)
	won, _, err := f.st.Accept(ctx, id, owner, f.clock.in(lease), store.Outcome{Attempt: m.Attempts, TrackingID: tid,
		To: "17743199144", From: "60856", MMSID: "48211"})
	if !won || err != nil {
		t.Fatalf("Accept(%s) = %v, %v", id, won, err)
	}
	if err := f.st.Link(ctx, tid, id, nil); err != nil {
		t.Fatal(err)
	}
	if err := f.st.EventSent(ctx, id); err != nil {
		t.Fatal(err)
	}
}

// postback is one postback of tid at offset d; done publishes its event.
func (f *fixture) postback(t *testing.T, d time.Duration, tid, code string, done bool) {
	t.Helper()
	ctx := context.Background()
	event, _, _ := postback.Classify(code)
	rank := 2
	if event == "sent" {
		rank = 1
	}
	f.clock.at(d)
	key := postback.Key(postback.Notification{Code: code, Status: event, Timestamp: t0.Add(d).Format(time.RFC3339), SentAs: "MMS"})
	owner := fmt.Sprintf("postback/req-%s", code)
	dec, j, err := f.st.Postback(ctx, tid, key, rank, event, owner, f.clock.in(lease))
	if err != nil || dec != store.Emit {
		t.Fatalf("Postback(%s, %s) = %v, %v", tid, code, dec, err)
	}
	if done {
		f.clock.at(d + 200*time.Millisecond)
		if err := f.st.PostbackDone(ctx, tid, key, owner, delivery.About{ID: j.ID}); err != nil {
			t.Fatal(err)
		}
	}
}

// scenarios are records in the states status shows, each with the
// command line that shows it.
var scenarios = map[string]func(t *testing.T, f *fixture) []string{
	// The README's example: retrying → accepted → sent → delivered.
	"delivered": func(t *testing.T, f *fixture) []string {
		f.retry(t, time.Second, "order-1", "5f0c81e2-a0d6/req-1", "E503")
		f.accept(t, 7*time.Second, "order-1", "0b7d9a44-61c3/req-2", "DrXAFP-Ylpc-JZL")
		f.postback(t, 9*time.Second, "DrXAFP-Ylpc-JZL", "N101", true)
		f.postback(t, 12*time.Second, "DrXAFP-Ylpc-JZL", "N102", true)
		f.clock.at(time.Minute)
		return []string{"status", "order-1"}
	},
	"by tracking id": func(t *testing.T, f *fixture) []string {
		f.accept(t, time.Second, "order-2", "1c9e/req-1", "Tk-2")
		f.postback(t, 3*time.Second, "Tk-2", "N101", true)
		return []string{"status", "--tracking", "Tk-2"}
	},
	"in progress": func(t *testing.T, f *fixture) []string {
		f.retry(t, time.Second, "order-3", "a1/req-1", "HTTP_500")
		f.claim(t, 20*time.Second, "order-3", "a1/req-2")
		f.clock.at(25 * time.Second)
		return []string{"status", "order-3"}
	},
	"lease ran out": func(t *testing.T, f *fixture) []string {
		f.claim(t, time.Second, "order-4", "dead/req-1")
		f.clock.at(2 * time.Minute)
		return []string{"status", "order-4"}
	},
	"in doubt": func(t *testing.T, f *fixture) []string {
		m := f.claim(t, time.Second, "order-5", "b2/req-1")
		f.clock.at(21 * time.Second)
		if ok, err := f.st.Doubt(context.Background(), "order-5", "b2/req-1", f.clock.in(window), store.Outcome{Attempt: m.Attempts, Code: "TIMEOUT"}); !ok || err != nil {
			t.Fatalf("Doubt = %v, %v", ok, err)
		}
		return []string{"status", "order-5"}
	},
	// A call timed out; its postback's CLIENT_REFERENCE proved the
	// acceptance, whose event is still being published.
	"accepted by postback with its event pending": func(t *testing.T, f *fixture) []string {
		ctx := context.Background()
		m := f.claim(t, time.Second, "order-6", "c3/req-1")
		f.clock.at(21 * time.Second)
		f.st.Doubt(ctx, "order-6", "c3/req-1", f.clock.in(window), store.Outcome{Attempt: m.Attempts, Code: "TIMEOUT"})
		f.clock.at(40 * time.Second)
		if won, _, err := f.st.AcceptByPostback(ctx, "order-6", "Tk-6", "postback/req-9", f.clock.in(lease)); !won || err != nil {
			t.Fatalf("AcceptByPostback = %v, %v", won, err)
		}
		f.st.Link(ctx, "Tk-6", "order-6", nil)
		f.postback(t, 40*time.Second, "Tk-6", "N101", false)
		f.clock.at(45 * time.Second)
		return []string{"status", "order-6"}
	},
	"suppressed": func(t *testing.T, f *fixture) []string {
		m := f.claim(t, time.Second, "order-7", "d4/req-1")
		won, _, err := f.st.Reject(context.Background(), "order-7", "d4/req-1", f.clock.in(lease), store.Outcome{Attempt: m.Attempts,
			Suppressed: true, Code: "E110", Error: "E110: suppressed: 17743199144 was refused with E110 at 2026-11-25T14:00:00Z (request order-0); no call until 2026-11-28T14:00:00Z",
			To: "17743199144", From: "60856", MMSID: "1000"})
		if !won || err != nil {
			t.Fatalf("Reject = %v, %v", won, err)
		}
		f.st.EventSent(context.Background(), "order-7")
		return []string{"status", "order-7"}
	},
	"expired after 23 attempts": func(t *testing.T, f *fixture) []string {
		for i := range 22 {
			f.retry(t, time.Duration(i)*time.Hour, "order-8", fmt.Sprintf("e5/req-%d", i+1), "E503")
		}
		m := f.claim(t, 24*time.Hour, "order-8", "e5/req-23")
		f.st.Expire(context.Background(), "order-8", "e5/req-23", f.clock.in(lease), store.Outcome{Attempt: m.Attempts,
			Code: "E503", Error: "SEND_RETRY_WINDOW (24h0m0s) spent"})
		f.st.EventSent(context.Background(), "order-8")
		return []string{"status", "order-8"}
	},
	// sendAt an hour ahead: recorded, its scheduled event published.
	"scheduled": func(t *testing.T, f *fixture) []string {
		f.schedule(t, time.Second, "order-9", time.Hour)
		return []string{"status", "order-9"}
	},
	// sendAt a minute ahead: the sweeper already gave the body back to the
	// send queue, which holds it until then.
	"scheduled and handed to the send queue": func(t *testing.T, f *fixture) []string {
		ctx := context.Background()
		f.schedule(t, time.Second, "order-10", time.Minute)
		if ok, _, err := f.st.Unschedule(ctx, "order-10", f.clock.in(2*time.Minute)); !ok || err != nil {
			t.Fatalf("Unschedule = %v, %v", ok, err)
		}
		f.clock.at(5 * time.Second)
		return []string{"status", "order-10"}
	},
	"tracking id nobody linked": func(t *testing.T, f *fixture) []string {
		f.postback(t, time.Second, "Tk-orphan", "N101", true)
		f.postback(t, 4*time.Second, "Tk-orphan", "E102", false)
		return []string{"status", "--tracking", "Tk-orphan"}
	},
}

// TestStatus prints each scenario as text and as JSON, against golden
// files (UPDATE_GOLDEN=1 rewrites them).
func TestStatus(t *testing.T) {
	for name, scenario := range scenarios {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			f := newFixture(t)
			args := scenario(t, f)
			file := strings.ReplaceAll(name, " ", "_")
			out, errOut, code := f.run(t, args...)
			if code != 0 {
				t.Fatalf("mmsgate %q = exit %d; stderr:\n%s", args, code, errOut)
			}
			golden(t, "status/"+file+".txt", out)
			out, errOut, code = f.run(t, append(args, "--json")...)
			if code != 0 {
				t.Fatalf("mmsgate %q --json = exit %d; stderr:\n%s", args, code, errOut)
			}
			var rep ops.Report
			if err := json.Unmarshal([]byte(out), &rep); err != nil {
				t.Fatalf("the JSON does not decode as a Report: %v\n%s", err, out)
			}
			golden(t, "status/"+file+".json", out)
		})
	}
}

// TestStatusReport checks the facts of the README's example, beyond its
// golden text.
func TestStatusReport(t *testing.T) {
	f := newFixture(t)
	scenarios["delivered"](t, f)
	rep, err := ops.Status(context.Background(), f.st, "order-1", f.clock.now())
	if err != nil {
		t.Fatal(err)
	}
	var steps []string
	for _, h := range rep.Message.History {
		steps = append(steps, fmt.Sprintf("%s %d %s %s %s", h.At, h.Attempt, h.State, h.Code, h.TrackingID))
	}
	want := []string{"2026-11-26T09:00:01.400Z 1 RETRY E503 ", "2026-11-26T09:00:07.600Z 2 ACCEPTED  DrXAFP-Ylpc-JZL"}
	if diff := cmp.Diff(want, steps); diff != "" {
		t.Errorf("history (-want +got):\n%s", diff)
	}
	var pbs []string
	for _, p := range rep.Tracking.Postbacks {
		pbs = append(pbs, p.Code+" "+p.Status)
	}
	if diff := cmp.Diff([]string{"N101 done", "N102 done"}, pbs); diff != "" {
		t.Errorf("postbacks (-want +got):\n%s", diff)
	}
	if m := rep.Message; m.State != store.StateAccepted || m.AcceptedBy != "sender" || m.Claim != nil || m.PendingEvent != "" || rep.Tracking.Highest != "delivered" {
		t.Errorf("report = %+v, tracking %+v", m, rep.Tracking)
	}
}

func TestStatusUnknown(t *testing.T) {
	tests := map[string]struct {
		args []string
		want string
	}{
		"id":          {args: []string{"status", "nope"}, want: `mmsgate: no request with id "nope": not found in table mmsgate-messages`},
		"tracking id": {args: []string{"status", "--tracking", "T-nope"}, want: `mmsgate: no postback or request with tracking id "T-nope": not found in table mmsgate-messages`},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			f := newFixture(t)
			out, errOut, code := f.run(t, tt.args...)
			if code != ops.ExitFailure || out != "" || strings.TrimSpace(errOut) != tt.want {
				t.Errorf("mmsgate %q = exit %d, stdout %q, stderr %q; want exit 1 and %q", tt.args, code, out, errOut, tt.want)
			}
		})
	}
}

func TestStatusStoreError(t *testing.T) {
	f := newFixture(t)
	f.mem.Fail(func(op, key string) error { return fmt.Errorf("injected %s failure", op) })
	_, errOut, code := f.run(t, "status", "order-1")
	if code != ops.ExitFailure || !strings.Contains(errOut, "injected GetItem failure") {
		t.Errorf("status on a failing table = exit %d, stderr %q", code, errOut)
	}
}
