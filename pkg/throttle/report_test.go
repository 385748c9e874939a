package throttle

import (
	"time"

	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/mmsgate/mmsgate/internal/sim"
	"github.com/mmsgate/mmsgate/pkg/apperr"
	"github.com/mmsgate/mmsgate/pkg/emf"
	"github.com/mmsgate/mmsgate/pkg/metric"
	"github.com/mmsgate/mmsgate/pkg/skycore"
)

// emitted reads EMF lines back: metric name → value (summed).
func emitted(t *testing.T, buf *bytes.Buffer) map[string]float64 {
	t.Helper()
	out := map[string]float64{}
	for _, line := range strings.Split(strings.TrimSpace(buf.String()), "\n") {
		if line == "" {
			continue
		}
		var doc map[string]any
		if err := json.Unmarshal([]byte(line), &doc); err != nil {
			t.Fatalf("%q: %v", line, err)
		}
		for _, name := range metric.All {
			if v, ok := doc[name].(float64); ok {
				out[name] += v
			}
		}
	}
	buf.Reset()
	return out
}

// rateRecovers: the rate read in the test and the one reported differ by
// the recovery between the two reads (real time).
var rateRecovers = cmpopts.EquateApprox(0, 1)

// TestReporter: the E113 answers and the limiter's counts reach CloudWatch
// once each, as deltas per Report, with the shared rate as a gauge.
func TestReporter(t *testing.T) {
	cfg := sim.Default()
	cfg.RateLimit = 10
	s, err := sim.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(s.Handler())
	t.Cleanup(func() { s.Close(); srv.Close() })
	l := New(newMemTable(t), table, Options{Limit: 1000})
	g := NewGate(skycore.New(srv.URL+sim.APIPath), l)
	var buf bytes.Buffer
	r := NewReporter(l, emf.New(&buf, "mmsgate", map[string]string{"Function": "send-mms"}))
	var e113 int
	for i := range 30 {
		if _, err := g.SendSavedMMS(context.Background(), "sim-api-key", request(t, fmt.Sprint("rep-", i))); apperr.CodeOf(err) == "E113" {
			e113++
		}
	}
	if e113 == 0 {
		t.Fatal("no E113 from a 10/s account at up to 960/s")
	}
	r.Report()
	st := l.Stats()
	want := map[string]float64{
		metric.ThroughputExceeded: float64(e113), metric.ThrottleCut: float64(st.Cuts), metric.ThrottleLeases: float64(st.Leases),
		metric.ThrottleRate: l.Rate(), metric.ThrottleSlots: float64(st.Slots),
	}
	if st.Gap > 0 {
		want[metric.ThrottleGap] = float64(st.Gap) / float64(time.Millisecond)
	}
	if st.Contended > 0 {
		want[metric.ThrottleContended] = float64(st.Contended)
	}
	if st.Forfeited > 0 {
		want[metric.ThrottleForfeited] = float64(st.Forfeited)
	}
	if diff := cmp.Diff(want, emitted(t, &buf), rateRecovers); diff != "" {
		t.Errorf("first report (-want +got):\n%s", diff)
	}
	r.Report() // nothing happened since: only the rate
	if diff := cmp.Diff(map[string]float64{metric.ThrottleRate: l.Rate()}, emitted(t, &buf), rateRecovers); diff != "" {
		t.Errorf("idle report (-want +got):\n%s", diff)
	}
	g.SendSavedMMS(context.Background(), "sim-api-key", request(t, "rep-last"))
	r.Report()
	if got := emitted(t, &buf); got[metric.ThroughputExceeded]+got[metric.ThrottleLeases] > 2 || got[metric.ThrottleSlots] > 1 {
		t.Errorf("one more call reported as %v: counts repeated", got)
	}
}
