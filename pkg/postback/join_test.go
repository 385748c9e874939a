package postback

import (
	"context"
	"errors"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/mmsgate/mmsgate/pkg/delivery"
	"github.com/mmsgate/mmsgate/pkg/store"
)

// pbXML is a postback of code for trackingID, with CLIENT_REFERENCE when
// ref is not "".
func pbXML(code, trackingID, ref string) string {
	n := Notification{Origin: "MMS_MT", Code: code, Status: "status of " + code, SentAs: "MMS", MMSID: "48211", From: "60856",
		To: "17743199144", TrackingID: trackingID, SPID: "0001470", Timestamp: "2026-11-24T16:02:11-05:00", ClientReference: ref}
	return string(n.Marshal())
}

// TestJoinRace guards a fixed bug: a postback that beats the sender's
// tracking-id write is joined to its id, never published with "id": "",
// and never before its request's accepted event.
func TestJoinRace(t *testing.T) {
	ctx := context.Background()
	hs := newHarness(t)
	sender := func(t *testing.T, id string, o store.Outcome, hold time.Duration) {
		t.Helper()
		if _, _, err := hs.store.Claim(ctx, id, store.Claim{Owner: "sender", Lease: hs.now().Add(time.Minute)}); err != nil {
			t.Fatal(err)
		}
		if won, _, err := hs.store.Accept(ctx, id, "sender", hs.now().Add(hold), o); err != nil || !won {
			t.Fatalf("Accept = %v, %v", won, err)
		}
	}
	type step struct {
		do         func(t *testing.T) // before the postback (the sender's progress, the clock)
		body       string
		wantStatus int
		want       []string
	}
	tests := []struct {
		name  string
		steps []step
		after func(t *testing.T)
	}{
		{name: "no link and no CLIENT_REFERENCE: 503 until the sender links it", steps: []step{
			{body: pbXML("N101", "T-a", ""), wantStatus: 503},
			{do: func(t *testing.T) { hs.link(t, "T-a", "race-a") }, body: pbXML("N101", "T-a", ""), wantStatus: 200, want: []string{"race-a:sent:N101"}},
		}},
		{name: "never linked: 503 within the join window, then id empty", steps: []step{
			{body: pbXML("N101", "T-b", ""), wantStatus: 503},
			{do: func(t *testing.T) { hs.at(5 * time.Minute) }, body: pbXML("N101", "T-b", ""), wantStatus: 503},
			{do: func(t *testing.T) { hs.at(JoinWindow + time.Second) }, body: pbXML("N101", "T-b", ""), wantStatus: 200, want: []string{":sent:N101"}},
			{body: pbXML("N102", "T-b", ""), wantStatus: 200, want: []string{":delivered:N102"}},
		}, after: func(t *testing.T) {
			hs.at(0)
			if !strings.Contains(hs.logs.String(), `"Unjoined":1`) {
				t.Error("no Unjoined metric")
			}
		}},
		{name: "CLIENT_REFERENCE of an in-doubt request: its accepted event first", steps: []step{
			{do: func(t *testing.T) {
				hs.store.Claim(ctx, "race-c", store.Claim{Owner: "sender", Lease: hs.now().Add(time.Minute)})
				hs.store.Doubt(ctx, "race-c", "sender", hs.now().Add(15*time.Minute), store.Outcome{Code: "TIMEOUT"})
			}, body: pbXML("N101", "T-c", "race-c"), wantStatus: 200, want: []string{"race-c:accepted:", "race-c:sent:N101"}},
			{body: pbXML("N102", "T-c", ""), wantStatus: 200, want: []string{"race-c:delivered:N102"}}, // linked now
		}, after: func(t *testing.T) {
			m, _ := hs.store.Get(ctx, "race-c")
			if m.State != store.StateAccepted || m.TrackingID != "T-c" || m.AcceptedBy != "postback" || m.PendingEvent != "" {
				t.Errorf("record = %+v, want accepted by postback with T-c, nothing pending", m)
			}
		}},
		{name: "CLIENT_REFERENCE, the sender's answer still on its way (a live claim): 503 until the sender recorded it", steps: []step{
			{do: func(t *testing.T) {
				hs.store.Claim(ctx, "race-d", store.Claim{Owner: "sender", Lease: hs.now().Add(time.Minute)})
			}, body: pbXML("N101", "T-d", "race-d"), wantStatus: 503},
			{do: func(t *testing.T) {
				won, _, err := hs.store.Accept(ctx, "race-d", "sender", hs.now().Add(time.Minute), store.Outcome{TrackingID: "T-d"})
				if err != nil || !won {
					t.Fatalf("the sender's Accept = %v, %v; want won (the postback waited)", won, err)
				}
				hs.store.Link(ctx, "T-d", "race-d", nil)
				hs.store.EventSent(ctx, "race-d") // the sender published accepted
			}, body: pbXML("N101", "T-d", "race-d"), wantStatus: 200, want: []string{"race-d:sent:N101"}},
		}},
		{name: "the sender recorded the acceptance, its accepted event not out yet: 503, no event", steps: []step{
			{do: func(t *testing.T) { sender(t, "race-e", store.Outcome{TrackingID: "T-e"}, time.Minute) },
				body: pbXML("N101", "T-e", "race-e"), wantStatus: 503},
			{do: func(t *testing.T) { hs.store.EventSent(ctx, "race-e") }, // the sender published it
				body: pbXML("N101", "T-e", "race-e"), wantStatus: 200, want: []string{"race-e:sent:N101"}},
			{body: pbXML("N102", "T-e", ""), wantStatus: 200, want: []string{"race-e:delivered:N102"}}, // the postback linked it
		}},
		{name: "linked, the accepted event held by the sender: 503, no event", steps: []step{
			{do: func(t *testing.T) {
				sender(t, "race-f", store.Outcome{TrackingID: "T-f"}, time.Minute)
				hs.link(t, "T-f", "race-f")
			}, body: pbXML("N101", "T-f", ""), wantStatus: 503},
			{do: func(t *testing.T) { hs.store.EventSent(ctx, "race-f") }, body: pbXML("N101", "T-f", ""), wantStatus: 200, want: []string{"race-f:sent:N101"}},
		}},
		{name: "the sender died after recording the acceptance: the postback publishes accepted first", steps: []step{
			{do: func(t *testing.T) {
				sender(t, "race-g", store.Outcome{TrackingID: "T-g", To: "17740000000", From: "60856", MMSID: "1000"}, -time.Second)
			}, body: pbXML("E102", "T-g", "race-g"), wantStatus: 200, want: []string{"race-g:accepted:", "race-g:undelivered:E102"}},
		}},
		{name: "CLIENT_REFERENCE naming no request of ours: id empty at once", steps: []step{
			{body: pbXML("N101", "T-h", "not-ours"), wantStatus: 200, want: []string{":sent:N101"}},
		}},
		{name: "final record, nothing pending: joined by CLIENT_REFERENCE and linked", steps: []step{
			{do: func(t *testing.T) {
				sender(t, "race-i", store.Outcome{TrackingID: "T-i"}, time.Minute)
				hs.store.EventSent(ctx, "race-i")
			}, body: pbXML("N101", "T-i", "race-i"), wantStatus: 200, want: []string{"race-i:sent:N101"}},
			{body: pbXML("N102", "T-i", ""), wantStatus: 200, want: []string{"race-i:delivered:N102"}},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			defer hs.at(0)
			for i, s := range tt.steps {
				if s.do != nil {
					s.do(t)
				}
				if resp := hs.invoke(t, post(s.body)); resp.StatusCode != s.wantStatus {
					t.Errorf("step %d: status %d, want %d", i, resp.StatusCode, s.wantStatus)
				}
				if diff := cmp.Diff(s.want, hs.events(t)); diff != "" {
					t.Errorf("step %d: events (-want +got):\n%s", i, diff)
				}
			}
			if tt.after != nil {
				tt.after(t)
			}
		})
	}
}

// TestAcceptedEventFields: the accepted event a postback publishes comes
// from the request's record, with the postback's tracking id.
func TestAcceptedEventFields(t *testing.T) {
	ctx := context.Background()
	hs := newHarness(t)
	hs.store.Claim(ctx, "race-x", store.Claim{Owner: "sender", Lease: hs.now().Add(time.Minute)})
	hs.store.Doubt(ctx, "race-x", "sender", hs.now().Add(15*time.Minute), store.Outcome{Code: "TIMEOUT"})
	hs.invoke(t, post(pbXML("N101", "T-x", "race-x")))
	evs, err := hs.drain()
	if err != nil || len(evs) != 2 {
		t.Fatalf("events = %+v, %v", evs, err)
	}
	mms := int64(48211)
	want := delivery.Event{ID: "race-x", Event: delivery.Accepted, TrackingID: "T-x", To: "17743199144", From: "60856", MMSID: &mms}
	got := evs[0]
	got.OccurredAt, got.RecordedAt = "", ""
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("accepted event (-want +got):\n%s", diff)
	}
}

// TestJoinFailuresRelease: a fixed bug on the join path. The events
// queue fails on the accepted event: 503, and a retry right after
// publishes accepted, then the postback's event, once each.
func TestJoinFailuresRelease(t *testing.T) {
	ctx := context.Background()
	hs := newHarness(t)
	hs.store.Claim(ctx, "race-r", store.Claim{Owner: "sender", Lease: hs.now().Add(time.Minute)})
	hs.store.Doubt(ctx, "race-r", "sender", hs.now().Add(15*time.Minute), store.Outcome{Code: "TIMEOUT"})
	var sends atomic.Int32
	for _, failAt := range []int32{1, 2} { // from the accepted event on, then from the postback's own on
		sends.Store(0)
		hs.sqsFaults.RefuseSends(func(string) error {
			if sends.Add(1) >= failAt { // and every SDK retry after it
				return errors.New("down")
			}
			return nil
		})
		if resp := hs.invoke(t, post(pbXML("N101", "T-r", "race-r"))); resp.StatusCode != 503 {
			t.Errorf("fail at send %d: status %d, want 503", failAt, resp.StatusCode)
		}
	}
	hs.sqsFaults.RefuseSends(nil)
	if resp := hs.invoke(t, post(pbXML("N101", "T-r", "race-r"))); resp.StatusCode != 200 {
		t.Errorf("retry right after: status %d, want 200", resp.StatusCode)
	}
	if diff := cmp.Diff([]string{"race-r:accepted:", "race-r:sent:N101"}, hs.events(t)); diff != "" {
		t.Errorf("events (-want +got):\n%s", diff)
	}
}

// TestNoMoveBack guards a fixed bug through the handler: N101 fails to
// publish, N102 succeeds, Skycore's retry of N101 gets 200 and no event.
func TestNoMoveBack(t *testing.T) {
	hs := newHarness(t)
	hs.link(t, "DrXAFP-Ylpc-JZL", "order-1")
	hs.sqsFaults.RefuseSends(func(string) error { return errors.New("down") })
	if resp := hs.invoke(t, post(fixture(t, "n101-mms"))); resp.StatusCode != 503 {
		t.Fatalf("status %d, want 503", resp.StatusCode)
	}
	hs.sqsFaults.RefuseSends(nil)
	for _, f := range []string{"n102-delivered", "n101-mms"} {
		if resp := hs.invoke(t, post(fixture(t, f))); resp.StatusCode != 200 {
			t.Errorf("%s: status %d, want 200", f, resp.StatusCode)
		}
	}
	if diff := cmp.Diff([]string{"order-1:delivered:N102"}, hs.events(t)); diff != "" {
		t.Errorf("events (-want +got):\n%s", diff)
	}
}

// countingRecords counts reads of msg# records.
type countingRecords struct {
	records
	gets atomic.Int32
}

func (c *countingRecords) Get(ctx context.Context, id string) (*store.Message, error) {
	c.gets.Add(1)
	return c.records.Get(ctx, id)
}

// TestHotPathReadsOnce: the request's record is read once per tracking id,
// not once per postback: the first postback records that it is settled.
func TestHotPathReadsOnce(t *testing.T) {
	ctx := context.Background()
	hs := newHarness(t)
	hs.store.Claim(ctx, "hot", store.Claim{Owner: "sender", Lease: hs.now().Add(time.Minute)})
	hs.store.Accept(ctx, "hot", "sender", hs.now().Add(time.Minute), store.Outcome{TrackingID: "T-hot"})
	hs.store.EventSent(ctx, "hot")
	hs.link(t, "T-hot", "hot")
	cr := &countingRecords{records: hs.store}
	hs.h.d.Store = cr
	for _, code := range []string{"N101", "N102"} {
		if resp := hs.invoke(t, post(pbXML(code, "T-hot", "hot"))); resp.StatusCode != 200 {
			t.Fatalf("%s: status %d", code, resp.StatusCode)
		}
	}
	if diff := cmp.Diff([]string{"hot:sent:N101", "hot:delivered:N102"}, hs.events(t)); diff != "" {
		t.Errorf("events (-want +got):\n%s", diff)
	}
	if n := cr.gets.Load(); n != 1 {
		t.Errorf("msg# read %d times for two postbacks, want 1", n)
	}
}

// TestShortWait: a race of milliseconds is absorbed inside the invocation
// (short pauses) instead of a 503 and Skycore's 5-minute retry.
func TestShortWait(t *testing.T) {
	ctx := context.Background()
	hs := newHarness(t)
	hs.h.waits = []time.Duration{20 * time.Millisecond, 50 * time.Millisecond, 100 * time.Millisecond, 200 * time.Millisecond}
	hs.store.Claim(ctx, "wait", store.Claim{Owner: "sender", Lease: hs.now().Add(time.Minute)})
	hs.store.Accept(ctx, "wait", "sender", hs.now().Add(time.Minute), store.Outcome{TrackingID: "T-wait"})
	done := make(chan struct{})
	go func() { // the sender links, publishes accepted and marks it sent 60 ms later
		defer close(done)
		time.Sleep(60 * time.Millisecond)
		hs.store.Link(ctx, "T-wait", "wait", nil)
		hs.store.EventSent(ctx, "wait")
	}()
	resp := hs.invoke(t, post(pbXML("N101", "T-wait", "")))
	<-done
	if resp.StatusCode != 200 {
		t.Errorf("status %d, want 200 after a short wait", resp.StatusCode)
	}
	if diff := cmp.Diff([]string{"wait:sent:N101"}, hs.events(t)); diff != "" {
		t.Errorf("events (-want +got):\n%s", diff)
	}
}

// TestBodySniffing guards a fixed bug: raw XML is read whatever the
// Content-Type says; a tracking id too long to key is counted and, under
// its surrogate key, waits for its link as any unknown one (503 in the
// join window), never malformed.
func TestBodySniffing(t *testing.T) {
	hs := newHarness(t)
	hs.link(t, "T-sniff", "sniff")
	body := func(code string) string { return pbXML(code, "T-sniff", "") }
	tests := []struct {
		name, contentType, body string
		want                    []string
	}{
		{"raw XML sent as a form", "application/x-www-form-urlencoded", body("N101"), []string{"sniff:sent:N101"}},
		{"raw XML after a BOM and blank lines, as a form", "application/x-www-form-urlencoded; charset=UTF-8", "\ufeff\r\n  " + body("N102"), []string{"sniff:delivered:N102"}},
		{"form field with a BOM inside", "application/x-www-form-urlencoded", "xml=%EF%BB%BF" + strings.ReplaceAll(body("N201"), "<", "%3C"), nil}, // history after delivered
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := post(tt.body)
			r.Headers["content-type"] = tt.contentType
			if resp := hs.invoke(t, r); resp.StatusCode != 200 {
				t.Errorf("status %d", resp.StatusCode)
			}
			if diff := cmp.Diff(tt.want, hs.events(t)); diff != "" {
				t.Errorf("events (-want +got):\n%s", diff)
			}
		})
	}
	if !strings.Contains(hs.logs.String(), `"Duplicates":1`) {
		t.Error("the form with a BOM was not processed (no Duplicates metric)")
	}
	t.Run("tracking id too long to key waits for its link", func(t *testing.T) {
		for _, size := range []int{store.MaxKeyBytes - 3, store.MaxKeyBytes, 5000} {
			if resp := hs.invoke(t, post(pbXML("N101", strings.Repeat("T", size), ""))); resp.StatusCode != 503 {
				t.Errorf("%d bytes: status %d, want 503 (not linked yet)", size, resp.StatusCode)
			}
		}
		if got := hs.events(t); len(got) != 0 {
			t.Errorf("events = %v", got)
		}
		logs := hs.logs.String()
		if strings.Contains(logs, `"Malformed":1`) || !strings.Contains(logs, `"UnkeyableTrackingID":1`) {
			t.Error("want UnkeyableTrackingID counted and no Malformed metric")
		}
	})
}

// TestHistoryPostbackReconciles: an in-doubt request's receipts come
// reordered: N102 without CLIENT_REFERENCE first (it waits for a link),
// then N101 with it, which is history (lower than the pending N102) and
// publishes nothing itself. Its CLIENT_REFERENCE still records the
// acceptance and links the tracking id, so N102's retry joins: accepted,
// then delivered, and the request is never sent again.
func TestHistoryPostbackReconciles(t *testing.T) {
	ctx := context.Background()
	hs := newHarness(t)
	hs.store.Claim(ctx, "race-h", store.Claim{Owner: "sender", Lease: hs.now().Add(time.Minute)})
	hs.store.Doubt(ctx, "race-h", "sender", hs.now().Add(15*time.Minute), store.Outcome{Code: "TIMEOUT"})
	if resp := hs.invoke(t, post(pbXML("N102", "T-h", ""))); resp.StatusCode != 503 {
		t.Fatalf("N102 without a reference: status %d, want 503 (not linked yet)", resp.StatusCode)
	}
	if resp := hs.invoke(t, post(pbXML("N101", "T-h", "race-h"))); resp.StatusCode != 200 {
		t.Fatalf("N101 with the reference: status %d", resp.StatusCode)
	}
	if resp := hs.invoke(t, post(pbXML("N102", "T-h", ""))); resp.StatusCode != 200 {
		t.Fatalf("N102's retry: status %d", resp.StatusCode)
	}
	if diff := cmp.Diff([]string{"race-h:accepted:", "race-h:delivered:N102"}, hs.events(t)); diff != "" {
		t.Errorf("events (-want +got):\n%s", diff)
	}
	if m, _ := hs.store.Get(ctx, "race-h"); m.State != store.StateAccepted || m.TrackingID != "T-h" {
		t.Errorf("record = %+v", m)
	}
}
