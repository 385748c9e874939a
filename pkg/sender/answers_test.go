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
