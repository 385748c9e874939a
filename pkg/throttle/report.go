package throttle

import (
	"time"

	"sync"

	"github.com/mmsgate/mmsgate/pkg/emf"
	"github.com/mmsgate/mmsgate/pkg/metric"
)

// metrics is what a Reporter writes to (pkg/emf).
type metrics interface {
	Put(name, unit string, v float64, extra ...string)
}

// Reporter writes what a limiter did as metrics (pkg/metric): the counts
// since its last Report, and the shared rate as the instance sees it.
type Reporter struct {
	l *Limiter
	m metrics

	mu   sync.Mutex
	last Stats
}

// NewReporter reports l's counts to m.
func NewReporter(l *Limiter, m metrics) *Reporter { return &Reporter{l: l, m: m} }

// Report writes the counts that grew since the last Report (an idle
// instance writes only the rate), once per invocation.
func (r *Reporter) Report() {
	r.mu.Lock()
	defer r.mu.Unlock()
	s := r.l.Stats()
	for _, c := range []struct {
		name      string
		now, last int
	}{
		{metric.ThroughputExceeded, s.Penalties, r.last.Penalties},
		{metric.ThrottleCut, s.Cuts, r.last.Cuts},
		{metric.ThrottleLeases, s.Leases, r.last.Leases},
		{metric.ThrottleContended, s.Contended, r.last.Contended},
		{metric.ThrottleForfeited, s.Forfeited, r.last.Forfeited},
		{metric.ThrottleSlots, s.Slots, r.last.Slots},
	} {
		if d := c.now - c.last; d > 0 {
			r.m.Put(c.name, emf.Count, float64(d))
		}
	}
	if d := s.Gap - r.last.Gap; d > 0 {
		r.m.Put(metric.ThrottleGap, emf.Milliseconds, float64(d)/float64(time.Millisecond)) // sub-millisecond gaps too
	}
	r.m.Put(metric.ThrottleRate, emf.CountPerSecond, r.l.Rate())
	r.last = s
}
