package sender

import (
	"context"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mmsgate/mmsgate/pkg/skycore"
	"github.com/mmsgate/mmsgate/pkg/store"
)

// answering points the harness's Skycore client at a server that answers
// every call with page (HTTP 200), and returns the call counter.
func (hs *harness) answering(t *testing.T, page string) *atomic.Int32 {
	t.Helper()
	var calls atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		w.Header().Set("Content-Type", "text/xml")
		w.Write([]byte(page))
	}))
	t.Cleanup(srv.Close)
	hs.h.d.Skycore = skycore.New(srv.URL, skycore.WithTimeout(time.Second))
	return &calls
}

// TestUnkeyableTrackingID: Skycore answers Success with a TRACKINGID too
// long to key. The request ends in exactly one accepted event (as with no
// tracking id: NO_TRACKINGID, "trackingId": ""), counted and logged by
// length and hash, and its redeliveries neither call again nor publish
// again.
func TestUnkeyableTrackingID(t *testing.T) {
	// It waits on leases and windows: overlap it with the others.
	t.Parallel()
	hs := newHarness(t, nil, nil)
	trk := strings.Repeat("T", store.MaxKeyBytes) // trk#+2048 bytes: over the key limit
	calls := hs.answering(t, `<RESPONSE><STATUS>Success</STATUS><MMSID>1000</MMSID><TRACKINGID>`+trk+
		`</TRACKINGID><TO>17743199144</TO></RESPONSE>`)
	ev := record(t, "m", `{"id":"long-trk","to":"17743199144","mmsId":1000}`, time.Now())
	for i := range 3 {
		resp, err := hs.invoke(t, context.Background(), ev)
		if err != nil || len(resp.BatchItemFailures) != 0 {
			t.Fatalf("delivery %d: %+v, %v (want acknowledged)", i, resp, err)
		}
	}
	if got := hs.kinds(t); !slices.Equal(got, []string{"long-trk:accepted:NO_TRACKINGID"}) {
		t.Errorf("events = %v, want one accepted with NO_TRACKINGID", got)
	}
	if n := calls.Load(); n != 1 {
		t.Errorf("calls = %d, want 1", n)
	}
	m, err := hs.h.d.Store.(*store.Store).Get(context.Background(), "long-trk")
	if err != nil || m.State != store.StateAccepted || m.TrackingID != "" || m.NeedsEvent() {
		t.Errorf("record = %+v, %v: want accepted, no tracking id, event sent", m, err)
	}
	logs := hs.logs.String()
	if strings.Contains(logs, trk[:100]) {
		t.Error("the tracking id itself is logged")
	}
	for _, want := range []string{`"trackingIdBytes":2048`, `"trackingIdSha256":"`, `"UnkeyableTrackingID":1`} {
		if !strings.Contains(logs, want) {
			t.Errorf("logs lack %s", want)
		}
	}
}

// TestAnswersThatSayTaken: answers that say Skycore took the request among
// other things (Success with an E-code, two STATUS elements, a Success over
// the size cap, an unexpected root with a tracking id) put the request in
// doubt: one call, one retrying (AMBIGUOUS), counted, logged with the
// answer redacted, no suppression of the number, and not sent again
// inside SEND_INDOUBT_WINDOW.
func TestAnswersThatSayTaken(t *testing.T) {
	// It waits on leases and windows: overlap it with the others.
	t.Parallel()
	const key = "k+y/Zq7W=v3%Np8&Lx<2Rt" // URL-, XML- and base64-sensitive characters
	const trk = "a1b2c3d4-0000-4000-8000-123456789abc"
	pages := map[string]string{
		"success-ecode": `<RESPONSE><STATUS>Success</STATUS><TRACKINGID>` + trk + `</TRACKINGID><ERRORCODE>E110</ERRORCODE><ERRORINFO>Invalid receiver number ` + strings.NewReplacer("&", "&amp;", "<", "&lt;").Replace(key) + `</ERRORINFO></RESPONSE>`,
		"two-status":    `<RESPONSE><STATUS>Success</STATUS><TRACKINGID>` + trk + `</TRACKINGID><STATUS>Failure</STATUS><ERRORCODE>E110</ERRORCODE></RESPONSE>`,
		"over-cap":      `<RESPONSE><STATUS>Success</STATUS><TRACKINGID>` + trk + `</TRACKINGID><STATUSDETAILS>` + strings.Repeat("x", skycore.MaxResponse) + `</STATUSDETAILS></RESPONSE>`,
		"odd-root":      `<SKYCORE><STATUS>Failure</STATUS><TRACKINGID>` + trk + `</TRACKINGID><ERRORCODE>E110</ERRORCODE></SKYCORE>`,
	}
	for name, page := range pages {
		t.Run(name, func(t *testing.T) {
			hs := newHarness(t, nil, func(c *Config) { c.InDoubtWindow, c.SuppressCodes = time.Hour, []string{"E110"} })
			hs.env.PutSecret(key, "tok")
			calls := hs.answering(t, page)
			ev := record(t, "m", `{"id":"odd-`+name+`","to":"17743199144","mmsId":1000}`, time.Now())
			hs.mustInvoke(t, context.Background(), ev, 1)
			hs.mustInvoke(t, context.Background(), ev, 1) // redelivered inside the window: not sent
			if n := calls.Load(); n != 1 {
				t.Errorf("calls = %d, want 1 (in doubt)", n)
			}
			if got := hs.kinds(t); !slices.Equal(got, []string{"odd-" + name + ":retrying:AMBIGUOUS"}) {
				t.Errorf("events = %v, want one retrying AMBIGUOUS", got)
			}
			m, err := hs.h.d.Store.(*store.Store).Get(context.Background(), "odd-"+name)
			if err != nil || m.State != store.StateInDoubt {
				t.Errorf("record = %+v, %v: want in doubt", m, err)
			}
			logs := hs.logs.String()
			if !strings.Contains(logs, `"AmbiguousAnswer":1`) || !strings.Contains(logs, "in doubt") {
				t.Errorf("not counted or not logged:\n%.2000s", logs)
			}
			for n := 6; n <= len(key); n++ {
				for j := 0; j+n <= len(key); j++ {
					if strings.Contains(logs, key[j:j+n]) {
						t.Fatalf("%d characters of the key in the logs: %q", n, key[j:j+n])
					}
				}
			}
			// The number is not suppressed: another request to it is sent.
			calls = hs.answering(t, `<RESPONSE><STATUS>Success</STATUS><TRACKINGID>t2</TRACKINGID></RESPONSE>`)
			hs.mustInvoke(t, context.Background(), record(t, "m2", `{"id":"next-`+name+`","to":"17743199144","mmsId":1000}`, time.Now()), 0)
			if got := hs.kinds(t); calls.Load() != 1 || !slices.Equal(got, []string{"next-" + name + ":accepted:"}) {
				t.Errorf("next request to the number: calls %d, events %v; want sent and accepted", calls.Load(), got)
			}
		})
	}
}

// TestAcceptedKeepsRequestTo: Skycore's answer names the number in its own
// form (or another one); the accepted event and the record keep the
// request's, and a different number is logged.
func TestAcceptedKeepsRequestTo(t *testing.T) {
	hs := newHarness(t, nil, nil)
	hs.answering(t, `<RESPONSE><STATUS>Success</STATUS><TRACKINGID>t-to</TRACKINGID><TO>19995550000</TO></RESPONSE>`)
	hs.mustInvoke(t, context.Background(), record(t, "m", `{"id":"to-1","to":"17743199144","mmsId":1000}`, time.Now()), 0)
	evs, _ := hs.env.DrainEvents()
	if len(evs) != 1 || evs[0].Event != "accepted" || evs[0].To != "17743199144" {
		t.Errorf("events = %+v, want one accepted to 17743199144", evs)
	}
	m, err := hs.h.d.Store.(*store.Store).Get(context.Background(), "to-1")
	if err != nil || m.To != "17743199144" {
		t.Errorf("record to = %q, %v", m.To, err)
	}
	if !strings.Contains(hs.logs.String(), `"skycoreTo":"19995550000"`) {
		t.Error("Skycore's other number is not logged")
	}
}
