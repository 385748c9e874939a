// Package soak turns mmsgate's promises into numbers: it drives many send
// requests through the real bootstraps under the Runtime Interface
// Emulator while the simulator injects faults, postbacks fail and repeat,
// SQS delivers twice, the sender is killed mid-batch and DynamoDB
// throttles; then it checks, from the simulator's records, the table and
// the delivery events, that nothing was lost or sent twice.
package soak

import (
	"context"
	"encoding/json"
	"fmt"
	"hash/fnv"
	"io"
	"math/rand/v2"
	"net/http"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"text/tabwriter"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/mmsgate/mmsgate/internal/localenv"
	"github.com/mmsgate/mmsgate/internal/sim"
	"github.com/mmsgate/mmsgate/internal/stack"
	"github.com/mmsgate/mmsgate/pkg/delivery"
	"github.com/mmsgate/mmsgate/pkg/sendreq"
	"github.com/mmsgate/mmsgate/pkg/store"
)

// Options of Run.
type Options struct {
	N         int           // send requests (default 10,000)
	Seed      uint64        // everything random derives from it
	Kills     int           // sender crashes (default 4: half right after Skycore accepted)
	Throttle  time.Duration // DynamoDB throttled this long, halfway (default 2 s)
	Progress  io.Writer     // a line every few seconds (nil: none)
	Logs      io.Writer     // the functions' logs (nil: discarded)
	Timeout   time.Duration // give up after (default 10 min)
	Senders   int           // sender instances (default 2)
	Postbacks int           // postback instances (default 2)
}

// Report is what the soak measured and found.
type Report struct {
	Requests, IDs, Malformed, DuplicateDeliveries int
	SkycoreCalls                                  int
	Faults                                        map[string]int
	PostbackAttempts, Postback5xx                 int
	PostbackRedeliveries                          int
	Kills, KilledAfterAccept, KilledBeforeCall    int
	Throttled                                     int64
	Accepted, Rejected, DeadLetter                int
	RetriesExhausted                              int
	Lost                                          int
	SentTwice, SentTwiceInCrashWindow             int
	DuplicateTerminal, DuplicateTerminalInWindow  int
	PostbackEvents, Unjoined                      int
	PostbacksDropped                              int
	Wall, P99Done                                 time.Duration
	PeakRSSKiB                                    map[string]int64
	Violations                                    []string
}

// MsgsPerSec is requests over wall time.
func (r *Report) MsgsPerSec() float64 { return float64(r.Requests) / r.Wall.Seconds() }

// Run builds nothing: pass stack.Build's binaries.
func Run(ctx context.Context, bins stack.Binaries, o Options) (*Report, error) {
	if o.N == 0 {
		o.N = 10000
	}
	if o.Kills == 0 {
		o.Kills = 4
	}
	if o.Throttle == 0 {
		o.Throttle = 2 * time.Second
	}
	if o.Timeout == 0 {
		o.Timeout = 10 * time.Minute
	}
	if o.Senders == 0 {
		o.Senders = 2
	}
	if o.Postbacks == 0 {
		o.Postbacks = 3
	}
	ctx, cancel := context.WithTimeout(ctx, o.Timeout)
	defer cancel()
	rng := rand.New(rand.NewPCG(o.Seed, 0xfeed))

	var pb5xx postbackFaults
	s, err := stack.Start(ctx, bins, stack.Options{
		Sim: simConfig(o.Seed), Timeout: 5 * time.Second, Visibility: 6 * time.Second, MaxReceive: 5, // as deployed
		Senders: o.Senders, Postbacks: o.Postbacks, BatchSize: 10, Logs: o.Logs,
		SenderEnv:    []string{"SKYCORE_TIMEOUT=1s", "SEND_CONCURRENCY=10"},
		PostbackHTTP: pb5xx.wrap,
	})
	if err != nil {
		return nil, err
	}
	defer s.Close()

	r := &Report{Faults: map[string]int{}, PeakRSSKiB: map[string]int64{}}
	want := map[string]string{} // id → "valid" | "invalid"
	var bodies []string
	for i := range o.N {
		id := fmt.Sprintf("soak-%06d", i)
		to := fmt.Sprintf("1774555%04d", rng.IntN(10000))
		switch x := rng.Float64(); {
		case x < 0.005: // not JSON: no id, straight to the DLQ
			bodies = append(bodies, fmt.Sprintf("garbage %d {", i))
			r.Malformed++
			continue
		case x < 0.035:
			want[id] = "invalid"
			bodies = append(bodies, fmt.Sprintf(`{"id":%q,"to":"+%s","mmsId":1000}`, id, to))
		case x < 0.05:
			want[id] = "valid" // a template Skycore does not have: rejected E241
			bodies = append(bodies, fmt.Sprintf(`{"id":%q,"to":%q,"mmsId":4242}`, id, to))
		default:
			want[id] = "valid"
			b := fmt.Sprintf(`{"id":%q,"to":%q,"mmsId":%d,"slides":[{"slide":1,"text":"Hello & <%d>"}]}`, id, to, 1000+rng.IntN(9), i)
			bodies = append(bodies, b)
			if rng.Float64() < 0.05 { // the same request delivered twice
				bodies = append(bodies, b)
				r.DuplicateDeliveries++
			}
		}
	}
	rng.Shuffle(len(bodies), func(i, j int) { bodies[i], bodies[j] = bodies[j], bodies[i] })
	r.Requests, r.IDs = len(bodies), len(want)

	// Crashes: at fixed counts of accepted sends, alternately inside the
	// simulator's acceptance (Skycore queued it, the sender never hears)
	// and a moment later (anywhere in the batch).
	window := map[string]bool{}
	var wmu sync.Mutex
	var accepted, kills, afterAccept, beforeCall atomic.Int64
	var armed atomic.Bool
	s.Env.Proxy.AfterForward(func(body []byte) {
		// Only the claim counts attempts.
		if !strings.Contains(string(body), `"attempts"`) || !armed.CompareAndSwap(true, false) {
			return
		}
		wmu.Lock()
		for _, id := range s.InFlight() {
			window[id] = true
		}
		wmu.Unlock()
		if s.KillSenders() > 0 {
			kills.Add(1)
			beforeCall.Add(1)
		} else {
			armed.Store(true) // that claimant already finished: take the next
		}
	})
	thresholds := map[int64]int{}
	for k := 1; k <= o.Kills; k++ {
		thresholds[int64(k*o.N/(o.Kills+2))] = k
	}
	s.Sim.OnAccept(func(req sim.Request) {
		n := accepted.Add(1)
		if n == int64(o.N/2) {
			go s.Env.Proxy.ThrottleFor(o.Throttle)
		}
		k, ok := thresholds[n]
		if !ok {
			return
		}
		wmu.Lock()
		for _, id := range s.InFlight() {
			window[id] = true
		}
		window[req.ClientReference] = true
		wmu.Unlock()
		if k%2 == 1 {
			if s.KillSenders() > 0 {
				kills.Add(1)
				afterAccept.Add(1)
			}
			return
		}
		// Before the call: at the next claim written, the sender dies
		// holding it; the redelivery takes the id over once the lease ends.
		armed.Store(true)
	})

	start := time.Now()
	for _, b := range bodies {
		if err := s.Enqueue(b); err != nil {
			return nil, err
		}
	}
	last := time.Now()
	err = s.Pump(ctx, func(p stack.Progress) {
		if o.Progress != nil && time.Since(last) > 3*time.Second {
			last = time.Now()
			fmt.Fprintf(o.Progress, "soak: %s batches %d, in queue %d, delivery events %d, Skycore accepted %d\n",
				time.Since(start).Round(time.Second), p.Batches, p.Queued, p.Events, accepted.Load())
		}
	})
	r.Wall = time.Since(start)
	if err != nil {
		return r, err
	}
	for _, inst := range s.Senders {
		r.PeakRSSKiB["send-mms"] = max(r.PeakRSSKiB["send-mms"], inst.RuntimeRSS())
	}
	for _, inst := range s.PostbackInstances() {
		r.PeakRSSKiB["postback"] = max(r.PeakRSSKiB["postback"], inst.RuntimeRSS())
	}
	r.Throttled = s.Env.Proxy.Throttled()
	r.Kills, r.KilledAfterAccept, r.KilledBeforeCall = int(kills.Load()), int(afterAccept.Load()), int(beforeCall.Load())
	if r.Kills < o.Kills {
		r.Violations = append(r.Violations, fmt.Sprintf("only %d of %d sender kills hit a running sender", r.Kills, o.Kills))
	}
	r.Postback5xx = int(pb5xx.failed.Load())
	return r, r.check(ctx, s, want, window, start)
}

// simConfig: ~20 % of calls fault (each rule's rate applies to what the
// rules before it let through), postbacks repeat and reorder, scenarios mix.
func simConfig(seed uint64) sim.Config {
	c := sim.Default()
	c.Seed = int64(seed)
	c.PostbackDelay, c.RetryInterval = sim.Duration(20*time.Millisecond), sim.Duration(200*time.Millisecond)
	c.PostbackTimeout = sim.Duration(5 * time.Second)
	c.DuplicateRate, c.ReorderRate = 0.05, 0.05
	c.Faults = []sim.Fault{
		{Kind: "E106", Rate: 0.035, Seconds: 1}, {Kind: "E113", Rate: 0.035}, {Kind: "E503", Rate: 0.035}, {Kind: "E618", Rate: 0.035},
		{Kind: "http500", Rate: 0.03}, {Kind: "http503", Rate: 0.02}, {Kind: "reset", Rate: 0.02}, {Kind: "hang", Rate: 0.01},
	}
	c.Scenarios = sim.Scenarios{Mix: map[sim.Scenario]int{
		sim.ScenarioDelivered: 70, sim.ScenarioNoReceipt: 8, sim.ScenarioExpired: 5, sim.ScenarioRejected: 2,
		sim.ScenarioFallbackDelivered: 10, sim.ScenarioFailed: 5,
	}}
	return c
}

// postbackFaults answers 503 to the first try of one postback in ten.
type postbackFaults struct {
	mu     sync.Mutex
	seen   map[uint64]bool
	failed atomic.Int64
}

func (p *postbackFaults) wrap(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(io.LimitReader(r.Body, 1<<20))
		h := fnv.New64a()
		h.Write(body)
		key := h.Sum64()
		p.mu.Lock()
		if p.seen == nil {
			p.seen = map[uint64]bool{}
		}
		first := !p.seen[key]
		p.seen[key] = true
		p.mu.Unlock()
		if first && key%10 == 0 {
			p.failed.Add(1)
			http.Error(w, "injected", http.StatusServiceUnavailable)
			return
		}
		r.Body = io.NopCloser(strings.NewReader(string(body)))
		next.ServeHTTP(w, r)
	})
}

// check computes the invariants.
func (r *Report) check(ctx context.Context, s *stack.Stack, want map[string]string, window map[string]bool, started time.Time) error {
	reqs := s.Sim.Requests()
	r.SkycoreCalls = len(reqs)
	sends := map[string]int{}
	tracking := map[string]string{} // tracking id → CLIENT_REFERENCE
	for _, q := range reqs {
		if q.Fault != "" {
			r.Faults[q.Fault]++
		}
		if q.Code == "" && q.Fault == "" {
			sends[q.ClientReference]++
			tracking[q.TrackingID] = q.ClientReference
		}
	}
	for _, p := range s.Sim.Postbacks() {
		r.PostbackAttempts++
		if p.Redelivery {
			r.PostbackRedeliveries++
		}
		if p.Dropped {
			r.PostbacksDropped++
		}
	}
	terminal := map[string]int{}
	var done []time.Time
	for _, e := range s.Events() {
		switch e.Event {
		case delivery.Accepted, delivery.Rejected:
			terminal[e.ID]++
			if at, err := time.Parse(delivery.TimeFormat, e.RecordedAt); err == nil && terminal[e.ID] == 1 {
				done = append(done, at)
			}
		case delivery.Sent, delivery.Delivered, delivery.Undelivered, delivery.Failed:
			r.PostbackEvents++
			if ref, ok := tracking[e.TrackingID]; !ok || ref != e.ID {
				r.Unjoined++
			}
		}
	}
	dlq := map[string]bool{}
	for _, m := range s.Env.SQS.Messages(localenv.SendDLQ) {
		if id := sendreq.PeekID([]byte(m.Body)); id != "" {
			dlq[id] = true
			if m.DeadLetterReason != "" {
				r.RetriesExhausted++
			}
		}
		r.DeadLetter++
	}

	// The table's view, read concurrently.
	st := store.New(s.Env.DynamoDB(), localenv.Table, 0)
	states := map[string]string{}
	var mu sync.Mutex
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(16)
	for id := range want {
		g.Go(func() error {
			m, err := st.Get(gctx, id)
			if err != nil {
				return err
			}
			mu.Lock()
			defer mu.Unlock()
			if m != nil {
				states[id] = m.State
			}
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return err
	}

	var v []string
	ids := make([]string, 0, len(want))
	for id := range want {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	for _, id := range ids {
		state := states[id]
		switch {
		case state == store.StateAccepted:
			r.Accepted++
		case state == store.StateRejected:
			r.Rejected++
		case dlq[id]:
		default:
			r.Lost++
			v = append(v, fmt.Sprintf("%s lost: table state %q, %d terminal events, not in the DLQ", id, state, terminal[id]))
		}
		if (state == store.StateAccepted || state == store.StateRejected) && terminal[id] == 0 {
			v = append(v, fmt.Sprintf("%s is %s in the table but no terminal event was published", id, state))
		}
		if want[id] == "invalid" && sends[id] > 0 {
			v = append(v, fmt.Sprintf("%s is invalid but reached Skycore", id))
		}
		if sends[id] > 1 {
			r.SentTwice++
			if window[id] {
				r.SentTwiceInCrashWindow++
			} else {
				v = append(v, fmt.Sprintf("%s sent %d times outside any crash window", id, sends[id]))
			}
		}
		if terminal[id] > 1 {
			r.DuplicateTerminal++
			if window[id] {
				r.DuplicateTerminalInWindow++
			} else {
				v = append(v, fmt.Sprintf("%s has %d terminal events outside any crash window", id, terminal[id]))
			}
		}
		if state == store.StateAccepted && sends[id] == 0 {
			v = append(v, fmt.Sprintf("%s accepted in the table but never sent", id))
		}
	}
	if len(done) > 0 {
		slices.SortFunc(done, func(a, b time.Time) int { return a.Compare(b) })
		r.P99Done = done[len(done)*99/100].Sub(started)
	}
	if r.PostbacksDropped > 0 {
		v = append(v, fmt.Sprintf("%d postbacks dropped by Skycore after its retries: delivery reports lost", r.PostbacksDropped))
	}
	if r.Unjoined > 0 {
		v = append(v, fmt.Sprintf("%d postback events not joined to their id", r.Unjoined))
	}
	if r.Accepted+r.Rejected+len(dlq) < len(want) {
		v = append(v, fmt.Sprintf("ids in %d ≠ accepted %d + rejected %d + DLQ %d", len(want), r.Accepted, r.Rejected, len(dlq)))
	}
	v = append(r.Violations, v...)
	if len(v) > 20 {
		v = append(v[:20], fmt.Sprintf("… and %d more", len(v)-20))
	}
	r.Violations = v
	return nil
}

// Print writes the summary table.
func (r *Report) Print(w io.Writer) {
	tw := tabwriter.NewWriter(w, 2, 4, 2, ' ', 0)
	row := func(k string, v any) { fmt.Fprintf(tw, "%s\t%v\n", k, v) }
	faults, total := make([]string, 0, len(r.Faults)), 0
	for k, n := range r.Faults {
		faults = append(faults, fmt.Sprintf("%s %d", k, n))
		total += n
	}
	sort.Strings(faults)
	row("requests (SQS messages)", r.Requests)
	row("request ids", r.IDs)
	row("malformed bodies (no id)", r.Malformed)
	row("duplicate SQS deliveries", r.DuplicateDeliveries)
	row("Skycore calls", r.SkycoreCalls)
	row("faults injected", fmt.Sprintf("%d (%.1f %% of calls): %s", total, 100*float64(total)/float64(max(r.SkycoreCalls, 1)), strings.Join(faults, ", ")))
	row("postback attempts", fmt.Sprintf("%d (%d answered 5xx once, %d redelivered)", r.PostbackAttempts, r.Postback5xx, r.PostbackRedeliveries))
	row("sender kills", fmt.Sprintf("%d (%d right after Skycore accepted, %d right after the claim, before the call)", r.Kills, r.KilledAfterAccept, r.KilledBeforeCall))
	row("DynamoDB calls throttled", r.Throttled)
	row("accepted / rejected / in DLQ", fmt.Sprintf("%d / %d / %d (%d after 5 failed receives, the rest malformed)", r.Accepted, r.Rejected, r.DeadLetter, r.RetriesExhausted))
	row("lost", r.Lost)
	row("sent twice", fmt.Sprintf("%d (all in a crash window: %d)", r.SentTwice, r.SentTwiceInCrashWindow))
	row("duplicate terminal events", fmt.Sprintf("%d (in a crash window: %d)", r.DuplicateTerminal, r.DuplicateTerminalInWindow))
	row("postback events / not joined", fmt.Sprintf("%d / %d", r.PostbackEvents, r.Unjoined))
	row("postbacks dropped after Skycore's retries", r.PostbacksDropped)
	row("wall time (99 % of ids final)", fmt.Sprintf("%s (%s)", r.Wall.Round(time.Millisecond), r.P99Done.Round(time.Millisecond)))
	row("throughput", fmt.Sprintf("%.0f msgs/s overall, %.0f msgs/s to 99 %%", r.MsgsPerSec(), 0.99*float64(r.Requests)/max(r.P99Done.Seconds(), 0.001)))
	row("peak RSS send-mms / postback", fmt.Sprintf("%.1f MiB / %.1f MiB", float64(r.PeakRSSKiB["send-mms"])/1024, float64(r.PeakRSSKiB["postback"])/1024))
	if len(r.Violations) == 0 {
		row("invariants", "all hold")
	} else {
		row("invariants", fmt.Sprintf("%d BROKEN", len(r.Violations)))
	}
	tw.Flush()
	for _, v := range r.Violations {
		fmt.Fprintln(w, "  -", v)
	}
}

// JSON is the report for tools.
func (r *Report) JSON() []byte {
	b, _ := json.MarshalIndent(r, "", "  ")
	return b
}
