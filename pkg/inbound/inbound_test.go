package inbound_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/mmsgate/mmsgate/internal/memdb"
	"github.com/mmsgate/mmsgate/pkg/inbound"
	"github.com/mmsgate/mmsgate/pkg/keyword"
	"github.com/mmsgate/mmsgate/pkg/skycore"
	"github.com/mmsgate/mmsgate/pkg/store"
)

const table = "mmsgate-messages"

type rig struct {
	st    *store.Store
	mu    sync.Mutex
	now   time.Time
	out   []inbound.Event
	fail  map[string]int // kind → failures left
	lists keyword.Lists
}

func newRig(t *testing.T) *rig {
	t.Helper()
	db := memdb.New()
	if err := store.CreateTable(context.Background(), db, table); err != nil {
		t.Fatal(err)
	}
	r := &rig{st: store.New(db, table, 0), now: time.Date(2026, 11, 26, 9, 0, 0, 0, time.UTC), fail: map[string]int{}, lists: keyword.Defaults()}
	r.st.SetClock(r.clock)
	return r
}

func (r *rig) clock() time.Time { r.mu.Lock(); defer r.mu.Unlock(); return r.now }
func (r *rig) advance(d time.Duration) {
	r.mu.Lock()
	r.now = r.now.Add(d)
	r.mu.Unlock()
}

func (r *rig) publish(_ context.Context, e inbound.Event) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.fail[e.Kind] > 0 {
		r.fail[e.Kind]--
		return errors.New("queue unavailable")
	}
	r.out = append(r.out, e)
	return nil
}

func (r *rig) kinds() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var k []string
	for _, e := range r.out {
		k = append(k, e.Kind)
	}
	return k
}

func (r *rig) handle(t *testing.T, m *skycore.Inbound, owner string) (inbound.Result, error) {
	t.Helper()
	return inbound.Handle(context.Background(), r.st, r.lists, m, owner, r.clock().Add(30*time.Second), r.publish)
}

func sms(text, id, received string) *skycore.Inbound {
	return &skycore.Inbound{Origin: "SMS_MO", Code: "N211", From: "17743199144", To: "60856", Text: text, TransactionID: id, Received: received}
}

func (r *rig) refused(t *testing.T, to, from string) bool {
	t.Helper()
	sup, err := r.st.SuppressedFor(context.Background(), to, from, "")
	if err != nil {
		t.Fatal(err)
	}
	if sup != nil && (sup.Code != "OPTED_OUT" || sup.Source != "keyword") {
		t.Errorf("suppression = %+v", sup)
	}
	return sup != nil
}

func TestStopThenStart(t *testing.T) {
	r := newRig(t)
	res, err := r.handle(t, sms("Stop.", "tx-1", "2026-11-26T04:00:00-05:00"), "o1")
	if err != nil || res.Outcome != inbound.Published || res.Suppression != "optout" || !cmp.Equal(res.Kinds, []string{"inbound", "optout"}) {
		t.Fatalf("STOP = %+v, %v", res, err)
	}
	want := []inbound.Event{
		{Kind: "inbound", TrackingID: "tx-1", Code: "N211", To: "60856", From: "17743199144", Text: "Stop.", OccurredAt: "2026-11-26T04:00:00-05:00"},
		{Kind: "optout", TrackingID: "tx-1", Code: "N211", To: "17743199144", From: "60856", Keyword: "STOP", OccurredAt: "2026-11-26T04:00:00-05:00"},
	}
	if diff := cmp.Diff(want, r.out); diff != "" {
		t.Errorf("events (-want +got):\n%s", diff)
	}
	if !r.refused(t, "17743199144", "60856") {
		t.Error("a send after the STOP is not refused")
	}
	if r.refused(t, "17743199144", "70000") {
		t.Error("a send from another code is refused")
	}
	// Skycore retries the same postback: nothing more.
	for _, o := range []string{"o2", "o3"} {
		if res, err := r.handle(t, sms("Stop.", "tx-1", "2026-11-26T04:00:00-05:00"), o); err != nil || res.Outcome != inbound.Duplicate {
			t.Errorf("copy = %+v, %v", res, err)
		}
	}
	r.advance(time.Minute)
	res, err = r.handle(t, sms("START", "tx-2", "2026-11-26T04:01:00-05:00"), "o4")
	if err != nil || res.Suppression != "optin" || !cmp.Equal(res.Kinds, []string{"inbound", "optin"}) {
		t.Fatalf("START = %+v, %v", res, err)
	}
	if r.refused(t, "17743199144", "60856") {
		t.Error("a send after the START is refused")
	}
	if got := r.kinds(); !cmp.Equal(got, []string{"inbound", "optout", "inbound", "optin"}) {
		t.Errorf("kinds = %v", got)
	}
}

// TestOlderStopAfterStart: Skycore retries a STOP after the START that
// followed it reached mmsgate; the number stays opted in.
func TestOlderStopAfterStart(t *testing.T) {
	r := newRig(t)
	if _, err := r.handle(t, sms("START", "tx-2", "2026-11-26T04:01:00-05:00"), "o1"); err != nil {
		t.Fatal(err)
	}
	res, err := r.handle(t, sms("STOP", "tx-1", "2026-11-26T04:00:00-05:00"), "o2")
	if err != nil || res.Suppression != "stale" || !cmp.Equal(res.Kinds, []string{"inbound", "optout"}) {
		t.Fatalf("older STOP = %+v, %v", res, err)
	}
	if r.refused(t, "17743199144", "60856") {
		t.Error("the older STOP opted the number out")
	}
}

func TestMMS(t *testing.T) {
	r := newRig(t)
	b, err := os.ReadFile("../skycore/testdata/inbound/mms-mo.xml")
	if err != nil {
		t.Fatal(err)
	}
	m, err := skycore.ParseInbound(b)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := r.handle(t, m, "o1"); err != nil {
		t.Fatal(err)
	}
	want := []inbound.Event{{Kind: "inbound", TrackingID: "MMS_MO_iLnCRrL6", Code: "N401", To: "60856", From: "17743199144",
		Subject: "Photo of the receipt", Files: m.Files, Keyword: "all", SPID: "0001470", OccurredAt: "2026-11-24T16:02:11-05:00"}}
	if diff := cmp.Diff(want, r.out); diff != "" {
		t.Errorf("events (-want +got):\n%s", diff)
	}
	// An MMS whose subject is an opt-out keyword opts out.
	m2 := *m
	m2.TrackingID, m2.Subject = "MMS_MO_2", "unsubscribe"
	if res, err := r.handle(t, &m2, "o2"); err != nil || res.Suppression != "optout" {
		t.Fatalf("MMS STOP = %+v, %v", res, err)
	}
	if !r.refused(t, "17743199144", "60856") {
		t.Error("MMS opt-out not applied")
	}
}

// TestPublishFailsHalfway: the optout event cannot be published; the
// invocation answers 5xx, and Skycore's retry publishes only what is
// missing. Each event reaches the queue once.
func TestPublishFailsHalfway(t *testing.T) {
	r := newRig(t)
	r.fail["optout"] = 1
	m := sms("QUIT", "tx-1", "")
	if _, err := r.handle(t, m, "o1"); err == nil {
		t.Fatal("no error when the optout event could not be published")
	}
	if !r.refused(t, "17743199144", "60856") {
		t.Error("the suppression change is not in place before the events") // it came first
	}
	res, err := r.handle(t, m, "o2") // at once: the claim was released
	if err != nil || res.Outcome != inbound.Published || !cmp.Equal(res.Kinds, []string{"optout"}) {
		t.Fatalf("retry = %+v, %v", res, err)
	}
	if got := r.kinds(); !cmp.Equal(got, []string{"inbound", "optout"}) {
		t.Errorf("kinds = %v", got)
	}
}

// TestHolderDies: an invocation dies after recording the opt-out (no
// release); the copy that comes while its hold lasts gets 503, the one
// after it publishes everything.
func TestHolderDies(t *testing.T) {
	r := newRig(t)
	m := sms("STOP", "tx-1", "")
	dead := func(context.Context, inbound.Event) error { return errors.New("killed") }
	hold := r.clock().Add(30 * time.Second)
	st := &noRelease{Store: r.st}
	if _, err := inbound.Handle(context.Background(), st, r.lists, m, "o1", hold, dead); err == nil {
		t.Fatal("no error")
	}
	if res, err := r.handle(t, m, "o2"); err != nil || res.Outcome != inbound.Busy {
		t.Fatalf("copy during the hold = %+v, %v", res, err)
	}
	r.advance(31 * time.Second)
	if res, err := r.handle(t, m, "o3"); err != nil || res.Outcome != inbound.Published {
		t.Fatalf("copy after the hold = %+v, %v", res, err)
	}
	if got := r.kinds(); !cmp.Equal(got, []string{"inbound", "optout"}) {
		t.Errorf("kinds = %v", got)
	}
}

// noRelease is a store whose releases are lost (the invocation died).
type noRelease struct{ *store.Store }

func (noRelease) ReleaseInbound(context.Context, string, string) error { return nil }

func TestConcurrentCopies(t *testing.T) {
	r := newRig(t)
	m := sms("STOPALL", "tx-1", "")
	var wg sync.WaitGroup
	outcomes := make([]inbound.Outcome, 10)
	for i := range outcomes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			res, err := r.handle(t, m, fmt.Sprintf("o%d", i))
			if err != nil {
				t.Error(err)
			}
			outcomes[i] = res.Outcome
		}()
	}
	wg.Wait()
	n := 0
	for _, o := range outcomes {
		if o == inbound.Published {
			n++
		}
	}
	if n != 1 {
		t.Errorf("outcomes = %v; want one published", outcomes)
	}
	if got := r.kinds(); !cmp.Equal(got, []string{"inbound", "optout"}) {
		t.Errorf("kinds = %v", got)
	}
}

func TestNoKeywordHandling(t *testing.T) {
	r := newRig(t)
	r.lists = keyword.Lists{} // OPTOUT_KEYWORDS=none OPTIN_KEYWORDS=none
	if res, err := r.handle(t, sms("STOP", "tx-1", ""), "o1"); err != nil || res.Suppression != "" || !cmp.Equal(res.Kinds, []string{"inbound"}) {
		t.Fatalf("= %+v, %v", res, err)
	}
	if r.refused(t, "17743199144", "60856") {
		t.Error("opted out with keyword handling off")
	}
	r.lists = keyword.Defaults()
	for _, text := range []string{"don't stop", "YES", ""} {
		if res, _ := r.handle(t, sms(text, "tx-"+text, ""), "o2"); len(res.Kinds) != 1 {
			t.Errorf("%q published %v", text, res.Kinds)
		}
	}
}

// TestNumbersThatAreNotKeys: a FROM that is not a phone number gets its
// events but changes no list (it could not be a request's "to").
func TestNumbersThatAreNotKeys(t *testing.T) {
	r := newRig(t)
	m := sms("STOP", "tx-1", "")
	m.From = "17743199144@70000"
	res, err := r.handle(t, m, "o1")
	if err != nil || res.Suppression != "" || !cmp.Equal(res.Kinds, []string{"inbound", "optout"}) {
		t.Fatalf("= %+v, %v", res, err)
	}
	if r.refused(t, "17743199144", "70000") || r.refused(t, "17743199144", "60856") {
		t.Error("a forged FROM changed the list")
	}
}

// TestNoMessageID: without a TRANSACTIONID the message's fields identify
// it, so a copy is still a duplicate.
func TestNoMessageID(t *testing.T) {
	r := newRig(t)
	if _, err := r.handle(t, sms("STOP", "", "2026-11-26T04:00:00-05:00"), "o1"); err != nil {
		t.Fatal(err)
	}
	if res, _ := r.handle(t, sms("STOP", "", "2026-11-26T04:00:00-05:00"), "o2"); res.Outcome != inbound.Duplicate {
		t.Errorf("copy = %v", res.Outcome)
	}
	if res, _ := r.handle(t, sms("STOP", "", "2026-11-26T04:05:00-05:00"), "o3"); res.Outcome != inbound.Published {
		t.Errorf("another message = %v", res.Outcome)
	}
}
