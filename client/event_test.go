package client_test

import (
	"encoding/json"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/mmsgate/mmsgate/client"
	"github.com/mmsgate/mmsgate/pkg/delivery"
)

// contractEvent is the event of docs/events.md.
const contractEvent = `{
  "id": "order-8812-shipped",
  "event": "delivered",
  "trackingId": "DrXAFP-Ylpc-JZL",
  "code": "N102",
  "status": "Message Sent/Delivered",
  "sentAs": "MMS",
  "to": "17743199144", "from": "60856", "mmsId": 48211,
  "spid": "0001470", "handset": "motol7c", "aggregatorId": "a1b2", "details": "",
  "error": "",
  "occurredAt": "2026-11-24T16:02:11-05:00",
  "recordedAt": "2026-11-24T21:02:12.031Z"
}`

func TestDecodeEventContract(t *testing.T) {
	t.Parallel()
	got, err := client.DecodeEvent([]byte(contractEvent))
	if err != nil {
		t.Fatalf("DecodeEvent(contract example) = %v", err)
	}
	mmsID := int64(48211)
	want := client.Event{ID: "order-8812-shipped", Event: "delivered", TrackingID: "DrXAFP-Ylpc-JZL", Code: "N102",
		Status: "Message Sent/Delivered", SentAs: "MMS", To: "17743199144", From: "60856", MMSID: &mmsID,
		SPID: "0001470", Handset: "motol7c", AggregatorID: "a1b2", OccurredAt: "2026-11-24T16:02:11-05:00",
		RecordedAt: "2026-11-24T21:02:12.031Z"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("DecodeEvent (-want +got):\n%s", diff)
	}
	at, err := got.Recorded()
	if wantAt := time.Date(2026, 11, 24, 21, 2, 12, 31e6, time.UTC); err != nil || !at.Equal(wantAt) {
		t.Errorf("Recorded() = %v, %v; want %v", at, err, wantAt)
	}
}

// Every kind the publisher writes decodes, and says whether it ends the
// request or is a final receipt.
func TestDecodeEventKinds(t *testing.T) {
	t.Parallel()
	tests := map[string]struct{ terminal, final, receipt bool }{
		client.Accepted:    {terminal: true},
		client.Rejected:    {terminal: true},
		client.Expired:     {terminal: true},
		client.Retrying:    {},
		client.Sent:        {receipt: true},
		client.Delivered:   {final: true, receipt: true},
		client.Undelivered: {final: true, receipt: true},
		client.Failed:      {final: true, receipt: true},
		client.Unconfirmed: {}, // neither: a late receipt may still come
		client.Canceled:    {terminal: true},
		client.Scheduled:   {},
		client.Inbound:     {},
		client.OptOut:      {},
		client.OptIn:       {},
	}
	if len(tests) != len(client.Kinds()) {
		t.Fatalf("%d kinds tested, Kinds() has %d", len(tests), len(client.Kinds()))
	}
	for _, kind := range client.Kinds() {
		want := tests[kind]
		t.Run(kind, func(t *testing.T) {
			t.Parallel()
			// The body as the publisher writes it.
			body, err := json.Marshal(delivery.Event{ID: "a", Event: kind, Code: "X1", RecordedAt: "2026-01-02T03:04:05.000Z"})
			if err != nil {
				t.Fatal(err)
			}
			e, err := client.DecodeEvent(body)
			if err != nil {
				t.Fatalf("DecodeEvent(%s) = %v", body, err)
			}
			if e.Event != kind || e.ID != "a" || e.Code != "X1" || e.MMSID != nil {
				t.Errorf("DecodeEvent(%s) = %+v", body, e)
			}
			if got := (struct{ terminal, final, receipt bool }{e.Terminal(), e.Final(), e.Receipt()}); got != want {
				t.Errorf("%s: Terminal, Final, Receipt = %v, want %v", kind, got, want)
			}
		})
	}
}

func TestDecodeEventBadInput(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		body     string
		want     error
		wantKind string // the event returned with ErrUnknownKind
	}{
		{name: "bad: empty", body: ``, want: client.ErrNotEvent},
		{name: "bad: junk", body: `hello`, want: client.ErrNotEvent},
		{name: "bad: null", body: `null`, want: client.ErrNotEvent},
		{name: "bad: array", body: `[{"event":"accepted"}]`, want: client.ErrNotEvent},
		{name: "bad: string", body: `"accepted"`, want: client.ErrNotEvent},
		{name: "bad: truncated", body: `{"id":"a","event":"accepted"`, want: client.ErrNotEvent},
		{name: "bad: two objects", body: `{"event":"accepted"}{"event":"rejected"}`, want: client.ErrNotEvent},
		{name: "bad: trailing junk", body: `{"event":"accepted"} x`, want: client.ErrNotEvent},
		{name: "bad: mmsId a string", body: `{"event":"accepted","mmsId":"48211"}`, want: client.ErrNotEvent},
		{name: "bad: mmsId a fraction", body: `{"event":"accepted","mmsId":1.5}`, want: client.ErrNotEvent},
		{name: "bad: code a number", body: `{"event":"rejected","code":110}`, want: client.ErrNotEvent},
		{name: "bad: event not a string", body: `{"event":1}`, want: client.ErrNotEvent},
		{name: "bad: no event", body: `{"id":"a"}`, want: client.ErrUnknownKind},
		{name: "bad: empty event", body: `{"id":"a","event":""}`, want: client.ErrUnknownKind},
		{name: "bad: unknown kind", body: `{"id":"a","event":"read"}`, want: client.ErrUnknownKind, wantKind: "read"},
		{name: "bad: kind in upper case", body: `{"id":"a","event":"DELIVERED"}`, want: client.ErrUnknownKind, wantKind: "DELIVERED"},
		{name: "ok: unknown extra fields ignored", body: `{"id":"a","event":"sent","carrier":{"name":"x"},"attempt":2}`},
		{name: "ok: surrounding white space", body: " \n\t{\"event\":\"failed\"}\r\n "},
		{name: "ok: id empty (postback for an unknown tracking id)", body: `{"id":"","event":"delivered","trackingId":"T1"}`},
		{name: "ok: mmsId null", body: `{"event":"accepted","mmsId":null}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			e, err := client.DecodeEvent([]byte(tt.body))
			if !errors.Is(err, tt.want) || (tt.want == nil) != (err == nil) {
				t.Fatalf("DecodeEvent(%q) = %v, want %v", tt.body, err, tt.want)
			}
			if errors.Is(err, client.ErrUnknownKind) && e.Event != tt.wantKind {
				t.Errorf("DecodeEvent(%q) kind = %q, want %q returned with the error", tt.body, e.Event, tt.wantKind)
			}
			if errors.Is(err, client.ErrNotEvent) && !cmp.Equal(e, client.Event{}) {
				t.Errorf("DecodeEvent(%q) = %+v with ErrNotEvent, want the zero event", tt.body, e)
			}
		})
	}
}

// FuzzDecodeEvent: no panic, and whatever decodes re-encodes to a body that
// decodes to the same event.
func FuzzDecodeEvent(f *testing.F) {
	f.Add([]byte(contractEvent))
	for _, k := range client.Kinds() {
		f.Add([]byte(`{"id":"a","event":"` + k + `","mmsId":1}`))
	}
	for _, s := range []string{``, `null`, `[]`, `{"event":"x"}`, `{"event":"sent","mmsId":-9223372036854775808}`,
		`{"event":"sent","EVENT":"failed","Id":"b","id":"a"}`, "{\"event\":\"sent\",\"to\":\"\xff\"}", `{"event":"sent"} {}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		e, err := client.DecodeEvent(body)
		if err != nil {
			if !errors.Is(err, client.ErrNotEvent) && !errors.Is(err, client.ErrUnknownKind) {
				t.Fatalf("DecodeEvent(%q) = %v, not ErrNotEvent or ErrUnknownKind", body, err)
			}
			return
		}
		if !slices.Contains(client.Kinds(), e.Event) {
			t.Fatalf("DecodeEvent(%q) accepted kind %q", body, e.Event)
		}
		again, err := json.Marshal(e)
		if err != nil {
			t.Fatalf("Marshal(%+v) = %v", e, err)
		}
		e2, err := client.DecodeEvent(again)
		if err != nil {
			t.Fatalf("DecodeEvent(%s) (re-encoded) = %v", again, err)
		}
		if diff := cmp.Diff(e, e2); diff != "" {
			t.Fatalf("decode, encode, decode differs (-first +second):\n%s", diff)
		}
	})
}
