package postback

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"net/url"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/mmsgate/mmsgate/pkg/delivery"
	"github.com/mmsgate/mmsgate/pkg/skycore"
	"github.com/mmsgate/mmsgate/pkg/store"
)

// moShapes are the ways one inbound document reaches the handler.
func moShapes(doc string) map[string]func() (body, ct string, b64 bool) {
	form := "xml=" + url.QueryEscape(doc)
	enc := base64.StdEncoding.EncodeToString
	return map[string]func() (string, string, bool){
		"raw":         func() (string, string, bool) { return doc, "text/xml", false },
		"form":        func() (string, string, bool) { return form, "application/x-www-form-urlencoded", false },
		"base64 raw":  func() (string, string, bool) { return enc([]byte(doc)), "application/xml", true },
		"base64 form": func() (string, string, bool) { return enc([]byte(form)), "application/x-www-form-urlencoded", true },
	}
}

func (hs *harness) mo(t *testing.T, body, ct string, b64 bool) int {
	t.Helper()
	r := post(body)
	r.Headers["content-type"] = ct
	r.IsBase64Encoded = b64
	return hs.invoke(t, r).StatusCode
}

func (hs *harness) postMO(t *testing.T, m *skycore.Inbound) int {
	t.Helper()
	return hs.mo(t, string(m.Marshal()), "text/xml", false)
}

// drainT drains the events, stamps cleared for comparison.
func (hs *harness) drainT(t *testing.T) []delivery.Event {
	t.Helper()
	evs, err := hs.drain()
	if err != nil {
		t.Fatal(err)
	}
	for i := range evs {
		if _, err := time.Parse(delivery.TimeFormat, evs[i].RecordedAt); err != nil {
			t.Errorf("recordedAt %q: %v", evs[i].RecordedAt, err)
		}
		evs[i].RecordedAt = ""
	}
	return evs
}

// TestInboundPostbacks: both MO shapes (SMS N211, MMS N401), UTF-8 and
// ISO-8859-1, raw, as the xml= form field and base64 of either, through
// the real handler: 200 and the inbound event of docs/events.md; a STOP
// also its optout, and the number suppressed for that code only.
func TestInboundPostbacks(t *testing.T) {
	stop := []delivery.Event{
		{Event: "inbound", TrackingID: "511XG-02294-192SA-482H8", Code: "N211", To: "60856", From: "17743199144", Text: "STOP",
			OccurredAt: "2011-09-28T17:31:02-04:00"},
		{Event: "optout", TrackingID: "511XG-02294-192SA-482H8", Code: "N211", To: "17743199144", From: "60856", Keyword: "STOP",
			OccurredAt: "2011-09-28T17:31:02-04:00"},
	}
	mms := []delivery.Event{{Event: "inbound", TrackingID: "MMS_MO_iLnCRrL6", Code: "N401", To: "60856", From: "17743199144",
		Subject: "Photo of the receipt", Keyword: "all", SPID: "0001470", OccurredAt: "2026-11-24T16:02:11-05:00",
		Files: []string{"https://content.skycore.com/mo/iLnCRrL6/1.txt", "https://content.skycore.com/mo/iLnCRrL6/2.jpg"}}}
	latin := []delivery.Event{{Event: "inbound", TrackingID: "T-latin", Code: "N211", To: "60856", From: "17743199144", // FROM normalised (+1 774-319-9144)
		Text: "Arrêt, merci", OccurredAt: "2026-11-24T16:02:11-05:00"}}
	for file, want := range map[string][]delivery.Event{"sms-mo.xml": stop, "mms-mo.xml": mms, "sms-mo-iso-8859-1.xml": latin} {
		doc, err := os.ReadFile("../skycore/testdata/inbound/" + file)
		if err != nil {
			t.Fatal(err)
		}
		for how, shape := range moShapes(string(doc)) {
			if how == "raw" && strings.Contains(file, "8859") {
				continue // bytes that are not UTF-8 reach the function base64-encoded (TestAdapterEncodesLikeAPIGateway)
			}
			t.Run(file+"/"+how, func(t *testing.T) {
				hs := newHarness(t)
				body, ct, b64 := shape()
				if code := hs.mo(t, body, ct, b64); code != 200 {
					t.Fatalf("status = %d, want 200", code)
				}
				if diff := cmp.Diff(want, hs.drainT(t), cmpopts.EquateEmpty()); diff != "" {
					t.Errorf("events (-want +got):\n%s", diff)
				}
				sup, err := hs.store.SuppressedFor(context.Background(), "17743199144", "60856", "")
				if err != nil {
					t.Fatal(err)
				}
				if (sup != nil) != (len(want) == 2) {
					t.Errorf("suppressed = %+v after %s", sup, file)
				}
				if sup != nil && sup.Code != "OPTED_OUT" {
					t.Errorf("suppression code = %s, want OPTED_OUT", sup.Code)
				}
				if sup, _ := hs.store.SuppressedFor(context.Background(), "17743199144", "70000", ""); sup != nil {
					t.Errorf("a STOP to 60856 suppresses requests from 70000: %+v", sup)
				}
				if !strings.Contains(hs.logs.String(), `"Inbound":1`) {
					t.Error("no Inbound metric")
				}
			})
		}
	}
}

func stopMO(from, id, text string) *skycore.Inbound {
	return &skycore.Inbound{Origin: "SMS_MO", Code: "N211", From: from, To: "60856", Text: text, TransactionID: id,
		Received: "2026-11-24T16:02:11-05:00"}
}

func kinds(evs []delivery.Event) []string {
	var k []string
	for _, e := range evs {
		k = append(k, e.Event+":"+e.Keyword)
	}
	return k
}

// TestInboundDuplicates: Skycore retries an inbound postback it got no 200
// for; copies, sequential or concurrent, give one inbound event and one
// optout. A copy that finds another invocation on it is answered 503.
func TestInboundDuplicates(t *testing.T) {
	hs := newHarness(t)
	m := stopMO("17743199144", "tx-dup", "Stop.")
	var wg sync.WaitGroup
	codes := make(chan int, 8)
	for range 8 {
		wg.Add(1)
		go func() { defer wg.Done(); codes <- hs.postMO(t, m) }()
	}
	wg.Wait()
	close(codes)
	for c := range codes {
		if c != 200 && c != 503 {
			t.Errorf("status %d, want 200 or 503", c)
		}
	}
	// Skycore's retries of whatever was answered 503.
	for range 3 {
		if c := hs.postMO(t, m); c != 200 {
			t.Errorf("retry status %d, want 200", c)
		}
	}
	if diff := cmp.Diff([]string{"inbound:", "optout:STOP"}, kinds(hs.drainT(t))); diff != "" {
		t.Errorf("events (-want +got):\n%s", diff)
	}
	if !strings.Contains(hs.logs.String(), `"Duplicates":1`) {
		t.Error("no Duplicates metric")
	}
}

// TestInboundKeywords: the keyword rule of docs/events.md, through the
// handler: what publishes optout or optin, what is only an inbound.
func TestInboundKeywords(t *testing.T) {
	hs := newHarness(t)
	tests := []struct {
		text string
		want []string
	}{
		{"STOP", []string{"inbound:", "optout:STOP"}},
		{"Stop.", []string{"inbound:", "optout:STOP"}},
		{" stop ", []string{"inbound:", "optout:STOP"}},
		{"stop please", []string{"inbound:", "optout:STOP"}},
		{"STOP ALL", []string{"inbound:", "optout:STOPALL"}},
		{"stop-all", []string{"inbound:", "optout:STOPALL"}},
		{"opt out", []string{"inbound:", "optout:OPTOUT"}},
		{"Unsubscribe!", []string{"inbound:", "optout:UNSUBSCRIBE"}},
		{"revoke", []string{"inbound:", "optout:REVOKE"}},
		{"start", []string{"inbound:", "optin:START"}},
		{"UN STOP", []string{"inbound:", "optin:UNSTOP"}},
		{"don't stop", []string{"inbound:"}},
		{"please stop", []string{"inbound:"}},
		{"I said STOP", []string{"inbound:"}},
		{"stopped", []string{"inbound:"}},
		{"", []string{"inbound:"}},
	}
	for i, tt := range tests {
		t.Run(tt.text, func(t *testing.T) {
			from := fmt.Sprintf("177431990%02d", i)
			if c := hs.postMO(t, stopMO(from, "kw-"+from, tt.text)); c != 200 {
				t.Fatalf("status %d", c)
			}
			if diff := cmp.Diff(tt.want, kinds(hs.drainT(t))); diff != "" {
				t.Errorf("events (-want +got):\n%s", diff)
			}
			sup, err := hs.store.SuppressedFor(context.Background(), from, "60856", "")
			if err != nil {
				t.Fatal(err)
			}
			if optout := len(tt.want) == 2 && strings.HasPrefix(tt.want[1], "optout"); (sup != nil) != optout {
				t.Errorf("suppressed = %+v", sup)
			}
		})
	}
}

// TestInboundStopStart: STOP then START to the same code lifts the
// opt-out; the events name the number in to, the code in from.
func TestInboundStopStart(t *testing.T) {
	hs := newHarness(t)
	hs.postMO(t, stopMO("17743199144", "tx-1", "STOP"))
	m := stopMO("17743199144", "tx-2", "START")
	m.Received = "2026-11-24T16:05:00-05:00"
	hs.postMO(t, m)
	evs := hs.drainT(t)
	if diff := cmp.Diff([]string{"inbound:", "optout:STOP", "inbound:", "optin:START"}, kinds(evs)); diff != "" {
		t.Fatalf("events (-want +got):\n%s", diff)
	}
	if e := evs[3]; e.To != "17743199144" || e.From != "60856" || e.ID != "" {
		t.Errorf("optin = %+v", e)
	}
	if sup, err := hs.store.SuppressedFor(context.Background(), "17743199144", "60856", ""); sup != nil || err != nil {
		t.Errorf("after START: %+v, %v", sup, err)
	}
	if !strings.Contains(hs.logs.String(), `"OptOuts":1`) || !strings.Contains(hs.logs.String(), `"OptIns":1`) {
		t.Error("no OptOuts / OptIns metric")
	}
}

// TestInboundFailures: malformed → 200 counted, nothing published; could
// not record (DynamoDB throttled, events queue down) → 5xx, and the retry
// publishes what is missing once; another invocation on it → 503.
func TestInboundFailures(t *testing.T) {
	t.Run("malformed", func(t *testing.T) {
		hs := newHarness(t)
		for _, doc := range []string{
			`<POSTBACK><ORIGIN>SMS_MO</ORIGIN><CODE>N401</CODE><FROM>1</FROM><TO>2</TO></POSTBACK>`,
			`<POSTBACK><ORIGIN>SMS_MO</ORIGIN><CODE>N211</CODE><TO>60856</TO><TEXT>STOP</TEXT></POSTBACK>`,
		} {
			if c := hs.mo(t, doc, "text/xml", false); c != 200 {
				t.Errorf("status %d, want 200", c)
			}
		}
		if evs := hs.drainT(t); len(evs) != 0 {
			t.Errorf("events %v", evs)
		}
		if !strings.Contains(hs.logs.String(), `"InboundMalformed":1`) {
			t.Error("no InboundMalformed metric")
		}
	})
	t.Run("DynamoDB throttled", func(t *testing.T) {
		hs := newHarness(t)
		hs.throttle()
		if c := hs.postMO(t, stopMO("17743199144", "tx-t", "STOP")); c < 500 {
			t.Errorf("status %d, want 5xx", c)
		}
		if evs := hs.drainT(t); len(evs) != 0 {
			t.Errorf("events %v", evs)
		}
	})
	t.Run("events queue down after the inbound event", func(t *testing.T) {
		hs := newHarness(t)
		var mu sync.Mutex
		sends := 0
		hs.sqsFaults.RefuseSends(func(string) error {
			mu.Lock()
			defer mu.Unlock()
			if sends++; sends > 1 {
				return errors.New("down")
			}
			return nil
		})
		m := stopMO("17743199144", "tx-q", "STOP")
		if c := hs.postMO(t, m); c < 500 {
			t.Fatalf("status %d, want 5xx", c)
		}
		// Recorded before any optout is published.
		if sup, _ := hs.store.SuppressedFor(context.Background(), "17743199144", "60856", ""); sup == nil {
			t.Error("not suppressed")
		}
		hs.sqsFaults.RefuseSends(nil)
		if c := hs.postMO(t, m); c != 200 {
			t.Fatalf("retry status %d, want 200", c)
		}
		hs.postMO(t, m)
		if diff := cmp.Diff([]string{"inbound:", "optout:STOP"}, kinds(hs.drainT(t))); diff != "" {
			t.Errorf("events (-want +got):\n%s", diff)
		}
	})
	t.Run("another invocation on it", func(t *testing.T) {
		hs := newHarness(t)
		m := stopMO("17743199144", "tx-b", "STOP")
		if _, err := hs.store.ClaimInbound(context.Background(), m.DedupKey(store.MaxInboundKey), "other", hs.now().Add(time.Minute)); err != nil {
			t.Fatal(err)
		}
		if c := hs.postMO(t, m); c != 503 {
			t.Errorf("status %d, want 503", c)
		}
		if evs := hs.drainT(t); len(evs) != 0 {
			t.Errorf("events %v", evs)
		}
		hs.at(2 * time.Minute) // the other holder's lease ran out
		if c := hs.postMO(t, m); c != 200 {
			t.Errorf("status %d after the hold, want 200", c)
		}
		if diff := cmp.Diff([]string{"inbound:", "optout:STOP"}, kinds(hs.drainT(t))); diff != "" {
			t.Errorf("events (-want +got):\n%s", diff)
		}
	})
}
