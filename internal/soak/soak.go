// Package soak turns mmsgate's promises into numbers: it drives many send
// requests through the real bootstraps under the Runtime Interface
// Emulator while
//
//   - the simulator injects per-call faults, answers some accepted sends
//     only after the sender's timeout (or drops the connection), goes down
//     for longer than the sender's old back-off chain (E503, then HTML 503,
//     then a closed port), leaves CLIENT_REFERENCE out of some postbacks,
//     delivers some postbacks before the send's answer, and has a carrier
//     that never sends receipts;
//   - postbacks fail, repeat and reorder; SQS delivers twice;
//   - the sender is killed mid-call and right after its claim;
//   - DynamoDB throttles everything for a moment, and refuses every
//     acceptance write for longer than one invocation while duplicates of
//     the ids in flight are enqueued;
//   - a hostile writer puts forged internal attributes and replayed bodies
//     on the send queue;
//
// then it checks, from the simulator's records, the table and the delivery
// events, every promise of docs/events.md: nothing lost, nothing sent twice,
// exactly one terminal send event per id, no acceptance without a Skycore
// acceptance, every postback event joined to its id and in order.
package soak

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"hash/fnv"
	"io"
	"maps"
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

	"github.com/aws/aws-sdk-go-v2/aws"
	stypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/mmsgate/mmsgate/internal/localenv"
	"github.com/mmsgate/mmsgate/internal/ops"
	"github.com/mmsgate/mmsgate/internal/sim"
	"github.com/mmsgate/mmsgate/internal/stack"
	"github.com/mmsgate/mmsgate/pkg/delivery"
	"github.com/mmsgate/mmsgate/pkg/sendreq"
	"github.com/mmsgate/mmsgate/pkg/store"
)

// Options of Run.
type Options struct {
	N        int           // send requests (default 10,000)
	Seed     uint64        // everything random derives from it
	Kills    int           // sender crashes (default 4: half right after Skycore accepted)
	Throttle time.Duration // DynamoDB throttled this long, halfway (default 2 s)
	Progress io.Writer     // a progress line every ProgressEvery (nil: none)
	// ProgressEvery is how often Progress gets a line (default 10 s).
	ProgressEvery time.Duration
	Logs          io.Writer     // the functions' logs (nil: discarded)
	Timeout       time.Duration // give up after (default 10 min)
	Senders       int           // sender instances (default 2)
	Postbacks     int           // postback instances (default 2)
	// Outage is how long Skycore is down, a third each E503, HTML 503 and
	// refused connections (default 80 s: longer than the old 5-receive
	// back-off chain of about 75 s).
	Outage time.Duration
	// RefuseAccept is how long DynamoDB refuses acceptance writes (default
	// 8 s, longer than one 5 s invocation).
	RefuseAccept time.Duration
	// InDoubtWindow is SEND_INDOUBT_WINDOW (default 25 s); InDoubtOff sets
	// it to 0 (an in-doubt request is sent again at once).
	InDoubtWindow time.Duration
	InDoubtOff    bool
	// BackoffBase and BackoffMax scale the sender's retry back-off
	// (SEND_BACKOFF_BASE, SEND_BACKOFF_MAX; deployed 5 s doubling to 15 min)
	// so that a run fits in minutes; defaults 1 s and 20 s.
	BackoffBase, BackoffMax time.Duration
	// RetryWindow is SEND_RETRY_WINDOW (default: the outage plus the
	// back-off that follows it plus time to work through N requests); ids
	// aimed at the template that is always "still encoding" (E626) expire
	// when it ends.
	RetryWindow time.Duration
	// RateLimit is the simulator's account-wide limit in calls per second,
	// answered E113 beyond (default DefaultRateLimit; negative: off). The
	// senders pace themselves alone, as deployed without SKYCORE_RATE_LIMIT:
	// the E113 that bursts draw are retried like any other.
	RateLimit float64
}

// DefaultRateLimit is a little above the rate the soak's senders reach
// between faults (2 instances on 2 cores): its bursts draw some E113.
const DefaultRateLimit = 35

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

	// The harsher faults, as exercised.
	OutageCalls, AcceptFaults        int // calls in the outage; sends accepted but not answered
	EarlyPostbacks, OmittedReference int // postback attempts before the answer; without CLIENT_REFERENCE
	NoReceiptIDs                     int // accepted ids on the carrier that sends no receipt
	AcceptRefused                    int64
	InFlightDuplicates               int // bodies re-enqueued while acceptance writes were refused
	Hostile                          int // forged or replayed messages put on the queue
	ForgedChecks                     int // forged messages put on the receipt-check queue
	Redriven                         int // moved back by the redrive during the run
	EventsReRead                     int // an event's message read again by the soak (its own reading, same message id)
	InDoubtWindow, RetryWindow       time.Duration
	Backoff                          string
	Limit                            sim.Throughput // the simulator's account-wide limit and its E113

	// The invariants of the summary line.
	MinTerminal, MaxTerminal int // terminal send events per id
	Forged                   int // accepted without any Skycore acceptance
	Expired                  int
	ExpiredByStrayFaults     int // expired after MinCallsBeforeExpiry faulted calls outside the outage
	Reconciled               int // accepted from a postback, one call
	ResentAfterAccept        int // a call after an earlier accepted call
	OrderViolations          int
	RetryingLast             int
	Misjoined                int // joined to the wrong id
	// MetadataMismatches: events whose metadata is not their request's
	// (a quarter of the requests carry some; the others' events none).
	MetadataMismatches int
	MetadataEvents     int                          // events that carried their request's metadata
	metadata           map[string]map[string]string // id → the metadata its request carried

	// Receipts: every accepted id without a final receipt gets exactly one
	// unconfirmed event after RECEIPT_WINDOW; one with a final receipt at
	// most one, and then before the receipt (a late receipt).
	Unconfirmed, NoFinalReceipt, UnconfirmedWrong int
	ReceiptWindow                                 time.Duration

	// Usage is what AWS would bill for the run, by service and operation.
	Usage *Usage

	// Opt-outs: numbers that wrote STOP during the run (optout events
	// seen), and requests to them enqueued after their opt-out was
	// recorded that reached Skycore anyway (must be 0).
	OptOuts, SentAfterOptOut int
	// Scheduled: requests with a sendAt a few seconds ahead of their
	// enqueueing; EarlySends counts Skycore calls before an id's sendAt.
	Scheduled, EarlySends int
	sendAt                map[string]time.Time

	// expiresAt: requests enqueued as the Skycore outage starts, each with
	// an expiresAt inside it. SentAfterExpiresAt counts Skycore calls at or
	// after an id's expiresAt (must be 0); ExpiredAtExpiresAt the ids that
	// ended expired with code EXPIRES_AT.
	ExpiresAtIDs, SentAfterExpiresAt, ExpiredAtExpiresAt int
	expMu                                                sync.Mutex
	expiresAt                                            map[string]time.Time

	// Cancels ({"id":X,"cancel":true}) racing scheduled requests and
	// immediate sends: Canceled ids ended canceled; CancelViolations break
	// docs/request.md's rules (see checkCancels).
	CancelRequests, Canceled, CancelViolations int
	cancels                                    *cancelTap

	// Odd answers to accepted sends (sim.OddAnswer: the sender is in doubt)
	// and tracking ids over 2,048 bytes (accepted as NO_TRACKINGID).
	OddAnswers, LongTrackingIDs int
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
	if o.Outage == 0 {
		o.Outage = 80 * time.Second
	}
	if o.RefuseAccept == 0 {
		o.RefuseAccept = 8 * time.Second
	}
	if o.InDoubtWindow == 0 {
		o.InDoubtWindow = 25 * time.Second
	}
	if o.InDoubtOff {
		o.InDoubtWindow = 0
	}
	if o.BackoffBase == 0 {
		o.BackoffBase = time.Second
	}
	if o.BackoffMax == 0 {
		o.BackoffMax = 20 * time.Second
	}
	if o.RateLimit == 0 {
		o.RateLimit = DefaultRateLimit
	}
	if o.RetryWindow == 0 {
		// Back-off doubles to at most BackoffMax with jitter: a request that
		// failed through the outage is tried again soon after it ends, and
		// again after a stray fault.
		// Past 1,000 requests the window must also cover the queue's drain
		// behind two senders on a 2-core machine (≈ 14 msgs/s measured
		// under the 10,000-request soak's faults): 100 ms each. (On moto,
		// which the soak no longer uses, it took 150 ms.)
		per := 30 * time.Millisecond
		if o.N > 1000 {
			per = 100 * time.Millisecond
		}
		o.RetryWindow = o.Outage + 100*time.Second + time.Duration(o.N)*per
	}
	ctx, cancel := context.WithTimeout(ctx, o.Timeout)
	defer cancel()
	rng := rand.New(rand.NewPCG(o.Seed, 0xfeed))

	var pb5xx postbackFaults
	cancels := &cancelTap{next: o.Logs}
	// Short, so that the run covers carriers that never send a receipt.
	const receiptWindow = 5 * time.Second
	s, err := stack.Start(ctx, bins, stack.Options{
		// The redrive limit is a backstop far above what the retry window needs.
		Sim: simConfig(o.Seed, o.RateLimit), Timeout: 5 * time.Second, Visibility: 6 * time.Second, MaxReceive: 100,
		// fakesqs and fakesecrets, not moto: the soak's verdicts depend on
		// timing windows (retry, in doubt, an invocation's deadline), and
		// moto's latency grows with load and queue depth. On moto, 3 of 6
		// runs broke a window-bound invariant (BENCHMARKS.md).
		InProcess: true,
		Senders:   o.Senders, Postbacks: o.Postbacks, BatchSize: 10, Logs: cancels,
		SenderEnv: []string{"SKYCORE_TIMEOUT=3s", "SEND_CONCURRENCY=10",
			"SEND_RETRY_WINDOW=" + o.RetryWindow.String(), "SEND_INDOUBT_WINDOW=" + o.InDoubtWindow.String(),
			"SEND_BACKOFF_BASE=" + o.BackoffBase.String(), "SEND_BACKOFF_MAX=" + o.BackoffMax.String()},
		PostbackHTTP: pb5xx.wrap, ReceiptWindow: receiptWindow.String(),
	})
	if err != nil {
		return nil, err
	}
	defer s.Close()

	r := &Report{Faults: map[string]int{}, PeakRSSKiB: map[string]int64{}, InDoubtWindow: o.InDoubtWindow, RetryWindow: o.RetryWindow, sendAt: map[string]time.Time{}, cancels: cancels,
		Backoff: fmt.Sprintf("%s doubling to %s", o.BackoffBase, o.BackoffMax)}
	want := map[string]string{} // id → "valid" | "invalid" | "expire"
	byID := map[string]string{} // id → body
	var bodies []string
	r.metadata = map[string]map[string]string{}
	for i := range o.N {
		id := fmt.Sprintf("soak-%06d", i)
		md := ""
		if i%4 == 1 { // a quarter of the requests carry metadata, each its own
			r.metadata[id] = map[string]string{"soak": id, "tenant:a.b-c_1": `"quoted" <é> & more`}
			b, _ := json.Marshal(r.metadata[id])
			md = `,"metadata":` + string(b)
		}
		to := fmt.Sprintf("1774555%04d", rng.IntN(10000))
		switch x := rng.Float64(); {
		case x < 0.005: // not JSON: no id, straight to the DLQ
			bodies = append(bodies, fmt.Sprintf("garbage %d {", i))
			r.Malformed++
			continue
		case x < 0.035:
			want[id] = "invalid"
			// A letter in the number: E110 (a leading + is a valid number since phones are normalised).
			bodies = append(bodies, fmt.Sprintf(`{"id":%q,"to":"%sx","mmsId":1000%s}`, id, to, md))
		case x < 0.05:
			want[id] = "valid" // a template Skycore does not have: rejected E241
			bodies = append(bodies, fmt.Sprintf(`{"id":%q,"to":%q,"mmsId":4242%s}`, id, to, md))
		case x < 0.06:
			want[id] = "expire" // always "still encoding" (E626): retried until the window ends
			bodies = append(bodies, fmt.Sprintf(`{"id":%q,"to":%q,"mmsId":1009%s}`, id, to, md))
		default:
			want[id] = "valid"
			b := fmt.Sprintf(`{"id":%q,"to":%q,"mmsId":%d,"slides":[{"slide":1,"text":"Hello & <%d>"}]%s}`, id, to, 1000+rng.IntN(9), i, md)
			cancelShare := 0.03 // a cancel racing an immediate send
			if rng.Float64() < 0.05 {
				// Held until a few seconds after it is taken in (the
				// schedule-sweep function brings it back).
				at := time.Now().Add(time.Duration(3+rng.IntN(6)) * time.Second).Truncate(time.Second)
				b = b[:len(b)-1] + `,"sendAt":"` + at.Format(time.RFC3339) + `"}`
				r.sendAt[id] = at
				r.Scheduled++
				cancelShare = 0.5 // a cancel racing its sendAt
			}
			byID[id] = b
			bodies = append(bodies, b)
			if rng.Float64() < cancelShare {
				// Anywhere in the queue: before its request (it must win),
				// while it waits for sendAt (it must win), while it is being
				// called, or after it is final (it changes nothing).
				bodies = append(bodies, fmt.Sprintf(`{"id":%q,"cancel":true}`, id))
				r.CancelRequests++
			}
			if rng.Float64() < 0.05 { // the same request delivered twice
				bodies = append(bodies, b)
				r.DuplicateDeliveries++
			}
		}
	}
	rng.Shuffle(len(bodies), func(i, j int) { bodies[i], bodies[j] = bodies[j], bodies[i] })

	// The hostile writer, at the start: new ids Skycore will refuse (E241)
	// and copies of real requests, each claiming to be accepted already.
	var hostile []message
	for i := range max(5, o.N/100) {
		id := fmt.Sprintf("forge-%04d", i)
		want[id] = "valid"
		hostile = append(hostile, message{fmt.Sprintf(`{"id":%q,"to":"17745550%03d","mmsId":4242}`, id, i%1000), forgedAttrs(rng, fmt.Sprintf("FORGED-%d", i))})
	}
	for id, b := range byID {
		if len(hostile) >= 2*max(5, o.N/100) {
			break
		}
		hostile = append(hostile, message{b, forgedAttrs(rng, "FORGED-"+id)})
	}
	r.Hostile = len(hostile)
	// Opt-outs during the run: once a quarter of the sends are accepted,
	// numbers write STOP to the default code through the simulator (POST
	// /_sim/mo, retried like any postback); once each opt-out is recorded,
	// requests to those numbers go in, and none may reach Skycore.
	var optBodies []string
	for k, num := range optNumbers {
		for j := range 3 {
			id := fmt.Sprintf("optout-%d-%d", k, j)
			want[id] = "optedout"
			optBodies = append(optBodies, fmt.Sprintf(`{"id":%q,"to":%q,"mmsId":1000}`, id, num))
		}
	}
	optDone := make(chan (<-chan error), 1)
	// Requests with an expiresAt inside the Skycore outage, enqueued as it
	// starts: none may reach Skycore at or after its expiresAt, and each
	// ends expired with code EXPIRES_AT (or accepted, had Skycore taken
	// it before).
	r.expiresAt = map[string]time.Time{}
	expiring := map[string]time.Duration{} // id → expiresAt after the outage starts
	for i := range max(5, o.N/50) {
		id := fmt.Sprintf("expires-%04d", i)
		want[id] = "expiresat"
		// Inside the outage, a few seconds from either end.
		expiring[id] = 5*time.Second + time.Duration(rng.Int64N(int64(max(o.Outage-10*time.Second, time.Second))))
	}
	r.ExpiresAtIDs = len(expiring)
	expDone := make(chan (<-chan error), 1)
	r.Requests, r.IDs = len(bodies)+len(hostile)+len(optBodies)+len(expiring), len(want)

	// Crashes: at fixed counts of accepted sends, alternately inside the
	// simulator's acceptance (Skycore queued it, the sender never hears)
	// and a moment later (anywhere in the batch).
	window := map[string]bool{}
	var wmu sync.Mutex
	var accepted, kills, afterAccept, beforeCall, refused, hostileLate atomic.Int64
	var armed atomic.Bool
	s.Env.Proxy.AfterForward(func(body []byte) {
		// Only the claim counts attempts.
		if !strings.Contains(string(body), `"attempts"`) || !armed.CompareAndSwap(true, false) {
			return
		}
		wmu.Lock()
		for _, id := range s.InFlight() {
			window[id] = true
			s.Sim.KeepReference(id) // their answers may be lost with the sender
		}
		wmu.Unlock()
		if s.KillSenders() > 0 {
			kills.Add(1)
			beforeCall.Add(1)
			time.AfterFunc(time.Second, func() { s.Sim.KeepReferences(false) })
		} else {
			armed.Store(true) // that claimant already finished: take the next
		}
	})
	thresholds := map[int64]int{}
	for k := 1; k <= o.Kills; k++ {
		thresholds[int64(k*o.N/(o.Kills+2))] = k
	}
	var forgedChecks, redriven atomic.Int64
	var redriveRan atomic.Bool
	var refusal sync.WaitGroup
	var inflightDups atomic.Int64
	s.Sim.OnAccept(func(req sim.Request) {
		n := accepted.Add(1)
		if n == int64(max(o.N/4, 1)) {
			// A feeder, so that the run waits for its requests.
			optDone <- s.Feed(func() error { return optOut(ctx, s, optNumbers, optBodies) })
		}
		switch n {
		case int64(max(o.N/10, 1)):
			// Skycore goes down: E503, then HTML 503, then nothing listens.
			third := sim.Duration(o.Outage / 3)
			for i, kind := range []string{"E503", "http503", "refused"} {
				s.Sim.StartOutage(sim.Outage{Kind: kind, Start: sim.Duration(i) * third, Length: third})
			}
			start := time.Now()
			expDone <- s.Feed(func() error { return r.enqueueExpiring(s, expiring, start) })
		case int64(o.N / 3):
			// Replays: bodies of accepted ids, claiming another message's
			// real tracking id (if trusted, its postbacks would be joined
			// to the wrong id).
			go func() {
				var tids []string
				for _, q := range s.Sim.Requests() {
					if q.Accepted {
						tids = append(tids, q.TrackingID)
					}
				}
				sent := 0
				for _, q := range s.Sim.Requests() {
					if b, ok := byID[q.ClientReference]; ok && q.Accepted && sent < 20 && len(tids) > 0 {
						s.Env.SendTo(context.Background(), localenv.SendQueue, b, forgedAttrs(rng2(n), tids[(sent*7+1)%len(tids)]))
						sent++
					}
				}
				hostileLate.Add(int64(sent))
			}()
		case int64(o.N * 4 / 10):
			// Forged receipt checks: any writer of the receipt-check queue
			// (a check's body may make the function look again, nothing
			// more): an id never sent, a real id with a wrong tracking id
			// and a past due time, and junk.
			go func() {
				sent := 0
				for i, q := range s.Sim.Requests() {
					if i >= 10 {
						break
					}
					if q.Accepted {
						body := fmt.Sprintf(`{"id":%q,"trackingId":"FORGED-%d","due":"2000-01-01T00:00:00.000Z"}`, q.ClientReference, i)
						if _, err := s.Env.SendTo(context.Background(), localenv.ReceiptQueue, body, nil); err == nil {
							sent++
						}
					}
				}
				for _, body := range []string{`{"id":"ghost-0001","trackingId":"GHOST","due":"2000-01-01T00:00:00.000Z"}`, `not json`, `{"id":""}`} {
					if _, err := s.Env.SendTo(context.Background(), localenv.ReceiptQueue, body, nil); err == nil {
						sent++
					}
				}
				forgedChecks.Add(int64(sent))
			}()
		case int64(o.N * 7 / 10):
			// An operator redrives the DLQ during the run (the README calls
			// it safe): final ids and bodies without a valid id stay.
			go func() {
				res, err := ops.Redrive(context.Background(), s.Env.SQSClient(), store.New(s.Env.DynamoDB(), localenv.Table, 0),
					ops.RedriveOptions{DLQ: s.Env.DLQURL, To: s.Env.SendQueueURL, Wait: -1, Visibility: 5 * time.Second}, nil)
				if err == nil {
					redriven.Store(int64(res.Moved))
				}
				redriveRan.Store(true)
			}()
		case int64(o.N / 2):
			go s.Env.Proxy.ThrottleFor(o.Throttle)
		case int64(o.N * 6 / 10):
			// DynamoDB refuses every acceptance write for longer than an
			// invocation while copies of the ids in flight are enqueued.
			refusal.Add(1)
			go func() {
				defer refusal.Done()
				before := s.Env.Proxy.Throttled()
				// Answers heard but not recorded, and a sender may die before its
				// hand-off: postbacks keep CLIENT_REFERENCE meanwhile.
				s.Sim.KeepReferences(true)
				defer s.Sim.KeepReferences(false)
				s.Env.Proxy.ThrottleMatching(acceptWrite, 1<<30)
				for range 4 {
					for _, id := range s.InFlight() {
						if b, ok := byID[id]; ok && s.Enqueue(b) == nil {
							inflightDups.Add(1)
						}
					}
					time.Sleep(o.RefuseAccept / 4)
				}
				s.Env.Proxy.ThrottleMatching(acceptWrite, 0)
				refused.Store(s.Env.Proxy.Throttled() - before)
			}()
		}
		k, ok := thresholds[n]
		if !ok {
			return
		}
		wmu.Lock()
		for _, id := range s.InFlight() {
			window[id] = true
			s.Sim.KeepReference(id)
		}
		window[req.ClientReference] = true
		s.Sim.KeepReference(req.ClientReference)
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
		s.Sim.KeepReferences(true) // until that kill: the batch's answers die with it
		armed.Store(true)
	})

	s.Env.Proxy.MeasureCapacity()
	before := takeSnapshot(s)
	start := time.Now()
	var phase atomic.Value // what the run is doing, for the progress line
	phase.Store("enqueue")
	var queued atomic.Int64 // the send queue's depth at the last batch
	if o.Progress != nil {
		final := 0 // as of the last line
		stopProgress := ProgressLines(o.Progress, cmp.Or(o.ProgressEvery, 10*time.Second), func() string {
			if phase.Load() != "check" { // the check reads the events itself: no drain beside it
				final = finalIDs(s.Events(), want)
			}
			return fmt.Sprintf("soak: %s %s: ids final %d/%d, in queue %d, Skycore accepted %d",
				time.Since(start).Round(time.Second), phase.Load(), final, len(want), queued.Load(), accepted.Load())
		})
		defer stopProgress()
	}
	// Up to maxQueued requests go in before the pollers start; more go in
	// beside them, the queue kept about maxQueued deep (moto's sends slow
	// with its depth, should the soak run on moto again).
	feedCtx, stopFeed := context.WithCancel(ctx)
	defer stopFeed()
	feed := func() error {
		for i, b := range bodies {
			for i%100 == 0 && len(bodies) > maxQueued {
				if feedCtx.Err() != nil {
					return feedCtx.Err() // Pump gave up: nobody drains the queue
				}
				if n, err := s.QueuedRequests(feedCtx); err != nil || n < maxQueued {
					break
				}
				time.Sleep(200 * time.Millisecond)
			}
			if err := s.Enqueue(b); err != nil {
				return err
			}
			if i == len(bodies)/10 {
				for _, h := range hostile {
					if _, err := s.Env.SendTo(ctx, localenv.SendQueue, h.body, h.attrs); err != nil {
						return err
					}
				}
			}
		}
		return nil
	}
	var fed <-chan error
	if len(bodies) > maxQueued {
		fed = s.Feed(feed)
	} else if err := feed(); err != nil {
		return nil, err
	}
	phase.Store("send and postbacks")
	err = s.Pump(ctx, func(p stack.Progress) { queued.Store(int64(p.Queued)) })
	stopFeed()
	phase.Store("check")
	if len(bodies) > maxQueued {
		if ferr := <-fed; ferr != nil && err == nil {
			err = fmt.Errorf("enqueue: %w", ferr)
		}
	}
	r.Wall = time.Since(start)
	refusal.Wait()
	select {
	case done := <-optDone:
		if oerr := <-done; oerr != nil {
			r.Violations = append(r.Violations, "opt-outs: "+oerr.Error())
		}
	default:
		r.Violations = append(r.Violations, "the opt-outs never started")
	}
	select {
	case done := <-expDone:
		if eerr := <-done; eerr != nil {
			r.Violations = append(r.Violations, "expiresAt requests: "+eerr.Error())
		}
	default:
		r.Violations = append(r.Violations, "the expiresAt requests never went in (no outage)")
	}
	r.Usage = usage(before, takeSnapshot(s), DefaultPrices)
	s.Env.Proxy.ThrottleMatching(acceptWrite, 0)
	r.AcceptRefused, r.InFlightDuplicates = refused.Load(), int(inflightDups.Load())
	r.Hostile += int(hostileLate.Load())
	r.ForgedChecks, r.Redriven, r.EventsReRead = int(forgedChecks.Load()), int(redriven.Load()), s.EventsReRead()
	if !redriveRan.Load() {
		r.Violations = append(r.Violations, "the redrive during the run did not run")
	}
	r.Requests += r.InFlightDuplicates + int(hostileLate.Load())
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
	r.Limit = s.Sim.Throughput()
	r.Kills, r.KilledAfterAccept, r.KilledBeforeCall = int(kills.Load()), int(afterAccept.Load()), int(beforeCall.Load())
	if r.Kills < o.Kills {
		r.Violations = append(r.Violations, fmt.Sprintf("only %d of %d sender kills hit a running sender", r.Kills, o.Kills))
	}
	r.Postback5xx = int(pb5xx.failed.Load())
	if err := r.Usage.measureItems(ctx, s.Env.DynamoDBDirect(), localenv.Table); err != nil {
		return r, err
	}
	return r, r.check(ctx, s, want, window, start)
}

// ProgressLines writes line() to w every interval until the returned stop
// is called: a long run says where it is even while nothing moves (an
// outage, a back-off).
func ProgressLines(w io.Writer, every time.Duration, line func() string) (stop func()) {
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		t := time.NewTicker(every)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
				fmt.Fprintln(w, line())
			}
		}
	}()
	return func() { close(done); wg.Wait() }
}

// finalIDs counts the ids of want with a terminal send event among events.
func finalIDs(events []delivery.Event, want map[string]string) int {
	final := map[string]bool{}
	for _, e := range events {
		if _, ok := want[e.ID]; ok && delivery.Terminal(e.Event) {
			final[e.ID] = true
		}
	}
	return len(final)
}

// maxQueued is how deep the soak lets the send queue get before it waits
// (a soak of at most that many enqueues everything first).
const maxQueued = 1000

// acceptWrite is in the body of every DynamoDB write that records an
// acceptance (the state value), and in no other call.
const acceptWrite = `{"S":"ACCEPTED"}`

// message is a body and its message attributes.
type message struct {
	body  string
	attrs map[string]stypes.MessageAttributeValue
}

// forgedAttrs are what a hostile queue writer adds: every internal
// attribute name mmsgate has used, with made-up values.
func forgedAttrs(rng *rand.Rand, trackingID string) map[string]stypes.MessageAttributeValue {
	str := func(v string) stypes.MessageAttributeValue {
		return stypes.MessageAttributeValue{DataType: aws.String("String"), StringValue: &v}
	}
	mac := fmt.Sprintf("%064x", rng.Uint64())
	return map[string]stypes.MessageAttributeValue{
		"mmsgate-accepted-tracking-id": str(trackingID),
		"mmsgate-handoff":              str(fmt.Sprintf(`{"t":%q,"first":%d}`, trackingID, time.Now().UnixMilli())),
		"mmsgate-handoff-mac":          str(mac),
	}
}

func rng2(n int64) *rand.Rand { return rand.New(rand.NewPCG(uint64(n), 0xbad)) }

// simConfig: ~20 % of calls fault (each rule's rate applies to what the
// rules before it let through), postbacks repeat and reorder, scenarios mix.
func simConfig(seed uint64, rateLimit float64) sim.Config {
	c := sim.Default()
	c.Seed = int64(seed)
	c.RateLimit = max(rateLimit, 0)
	// Skycore's five retries (5 min apart) outlast any fault the soak
	// injects; scaled down, they must still outlast the refused acceptance
	// writes (8 s), or postbacks are dropped for the wrong reason.
	// As deployed, Skycore's retries (5 × 5 min) outlast SEND_INDOUBT_WINDOW
	// (15 min): scaled, 5 × 6 s outlast the soak's 25 s, or an in-doubt
	// request whose postbacks met a busy moment is sent again for the wrong
	// reason.
	c.PostbackDelay, c.RetryInterval = sim.Duration(20*time.Millisecond), sim.Duration(6*time.Second)
	c.PostbackTimeout = sim.Duration(5 * time.Second)
	c.DuplicateRate, c.ReorderRate = 0.05, 0.05
	c.OmitClientReferenceRate, c.EarlyPostbackRate = 0.1, 0.05
	c.ReferenceOnLostAnswers = true // the contract reconciles in-doubt sends only through CLIENT_REFERENCE
	// A call can also time out because the machine is busy (a lost answer
	// the simulator cannot see): N101 always carries the reference, the
	// receipts without it still exercise the joins by tracking id.
	c.OmitReferenceFromReceiptsOnly = true
	c.ReferenceOnLostAnswers = true
	c.NoReceiptCarriers = sim.Carriers()[:1] // a quarter of the numbers never get a receipt
	c.Faults = []sim.Fault{
		// Skycore queued it, the sender hears nothing (SKYCORE_TIMEOUT=3s).
		{Kind: "accept-hang", Rate: 0.02}, {Kind: "accept-reset", Rate: 0.01},
		// Skycore queued it and says so oddly (the sender is in doubt), or
		// with a tracking id too long to key.
		{Kind: "accept-errorcode", Rate: 0.01}, {Kind: "accept-twostatus", Rate: 0.01},
		{Kind: "accept-oversize", Rate: 0.01}, {Kind: "accept-oddroot", Rate: 0.01}, {Kind: "accept-longtid", Rate: 0.01},
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
	calls := map[string][]sim.Request{} // CLIENT_REFERENCE → its calls, in order
	tracking := map[string]string{}     // tracking id → CLIENT_REFERENCE
	noReceipt := map[string]bool{}
	quiet := sim.Carriers()[0]
	for _, q := range reqs {
		switch {
		case strings.HasPrefix(q.Fault, "outage-"):
			r.OutageCalls++
		case q.Fault == "accept-hang" || q.Fault == "accept-reset":
			r.AcceptFaults++
		case sim.OddAnswer(q.Fault):
			r.OddAnswers++
		case q.Fault == "accept-longtid" && q.Accepted:
			r.LongTrackingIDs++
		}
		if q.Fault != "" {
			r.Faults[q.Fault]++
		}
		if at, ok := r.sendAt[q.ClientReference]; ok && q.Time.Before(at) {
			r.EarlySends++
			r.Violations = append(r.Violations, fmt.Sprintf("%s called at %s, before its sendAt %s", q.ClientReference,
				q.Time.UTC().Format(time.RFC3339Nano), at.UTC().Format(time.RFC3339)))
		}
		calls[q.ClientReference] = append(calls[q.ClientReference], q)
		if q.Accepted {
			tracking[q.TrackingID] = q.ClientReference
			if q.Carrier == quiet {
				noReceipt[q.ClientReference] = true
			}
		}
	}
	r.NoReceiptIDs = len(noReceipt)
	for _, p := range s.Sim.Postbacks() {
		r.PostbackAttempts++
		if p.Redelivery {
			r.PostbackRedeliveries++
		}
		if p.Dropped {
			r.PostbacksDropped++
		}
		if p.BeforeAnswer {
			r.EarlyPostbacks++
		}
		if p.OmittedClientReference {
			r.OmittedReference++
		}
	}

	// The delivery events, per id, in the order they were published.
	rank := map[string]int{delivery.Sent: 1, delivery.Delivered: 2, delivery.Undelivered: 2, delivery.Failed: 2}
	terminal := map[string]int{}
	acceptedEvent := map[string]bool{}
	expired := map[string]bool{}
	lastSend := map[string]string{}
	highest := map[string]int{}
	unconfirmed, finalSeen := map[string]int{}, map[string]bool{}
	kinds := map[string]map[string]bool{}        // distinct terminal events per id
	firstTerminal := map[string]delivery.Event{} // each id's first terminal event
	canceledAt := map[string]time.Time{}         // when each canceled id's canceled event was recorded
	var v []string
	var done []time.Time
	for _, e := range s.Events() {
		if _, ours := want[e.ID]; ours && e.Event == delivery.Canceled && e.Metadata == nil {
			// A cancel that came before its request never saw its metadata.
		} else if ours && !maps.Equal(e.Metadata, r.metadata[e.ID]) {
			r.MetadataMismatches++
			v = append(v, fmt.Sprintf("%s: %s event with metadata %v, want %v", e.ID, e.Event, e.Metadata, r.metadata[e.ID]))
		} else if ours && e.Metadata != nil {
			r.MetadataEvents++
		}
		switch e.Event {
		case delivery.Accepted, delivery.Rejected, delivery.Expired, delivery.Canceled:
			if _, ok := firstTerminal[e.ID]; !ok {
				firstTerminal[e.ID] = e
			}
			if _, ok := canceledAt[e.ID]; !ok && e.Event == delivery.Canceled {
				canceledAt[e.ID], _ = time.Parse(delivery.TimeFormat, e.RecordedAt)
			}
			terminal[e.ID]++
			if kinds[e.ID] == nil {
				kinds[e.ID] = map[string]bool{}
			}
			kinds[e.ID][e.Event] = true
			lastSend[e.ID] = e.Event
			if e.Event == delivery.Accepted {
				acceptedEvent[e.ID] = true
			}
			if e.Event == delivery.Expired {
				expired[e.ID] = true
			}
			if at, err := time.Parse(delivery.TimeFormat, e.RecordedAt); err == nil && terminal[e.ID] == 1 {
				done = append(done, at)
			}
		case delivery.Retrying:
			lastSend[e.ID] = e.Event
		case delivery.Unconfirmed:
			r.Unconfirmed++
			if !acceptedEvent[e.ID] {
				r.UnconfirmedWrong++
				v = append(v, e.ID+": unconfirmed before or without an accepted event")
			}
			unconfirmed[e.ID]++
			if finalSeen[e.ID] {
				r.UnconfirmedWrong++
				v = append(v, e.ID+": unconfirmed after its final receipt")
			}
		case delivery.Sent, delivery.Delivered, delivery.Undelivered, delivery.Failed:
			r.PostbackEvents++
			ref, issued := tracking[e.TrackingID]
			switch {
			case e.ID == "" && issued:
				r.Unjoined++
				continue
			case issued && ref != e.ID:
				r.Misjoined++
				v = append(v, fmt.Sprintf("%s event for tracking id %s (%s's) published under %s", e.Event, e.TrackingID, ref, e.ID))
				continue
			}
			if !acceptedEvent[e.ID] {
				r.OrderViolations++
				v = append(v, fmt.Sprintf("%s: %s event before its accepted event", e.ID, e.Event))
			}
			if rank[e.Event] < highest[e.ID] {
				r.OrderViolations++
				v = append(v, fmt.Sprintf("%s: %s after a later state", e.ID, e.Event))
			}
			highest[e.ID] = max(highest[e.ID], rank[e.Event])
			finalSeen[e.ID] = finalSeen[e.ID] || rank[e.Event] == 2
		}
	}
	for id := range acceptedEvent {
		switch n := unconfirmed[id]; {
		case !finalSeen[id] && n != 1:
			r.UnconfirmedWrong++
			v = append(v, fmt.Sprintf("%s: no final receipt and %d unconfirmed events, want 1", id, n))
		case n > 1:
			r.UnconfirmedWrong++
			v = append(v, fmt.Sprintf("%s: %d unconfirmed events", id, n))
		}
		if !finalSeen[id] {
			r.NoFinalReceipt++
		}
	}
	dlq := map[string]bool{}
	dead, err := s.Env.Peek(ctx, localenv.SendDLQ)
	if err != nil {
		return fmt.Errorf("read the DLQ: %w", err)
	}
	for _, m := range dead {
		if id := sendreq.PeekID([]byte(aws.ToString(m.Body))); id != "" {
			dlq[id] = true
			// The sender dead-letters with error and originalMessageId
			// attributes; SQS's redrive (maxReceiveCount) moves the message
			// as it was (moto sets no DeadLetterQueueSourceArn to tell).
			_, why := m.MessageAttributes["error"]
			_, orig := m.MessageAttributes["originalMessageId"]
			if !why || !orig {
				r.RetriesExhausted++
			}
		}
		r.DeadLetter++
	}

	// The table's view, read concurrently.
	st := store.New(s.Env.DynamoDB(), localenv.Table, 0)
	records := map[string]*store.Message{}
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
				records[id] = m
			}
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return err
	}

	ids := make([]string, 0, len(want))
	for id := range want {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	r.MinTerminal, r.MaxTerminal = 1, 1
	for _, id := range ids {
		m := records[id]
		state := ""
		if m != nil {
			state = m.State
		}
		switch state {
		case store.StateAccepted:
			r.Accepted++
		case store.StateRejected:
			r.Rejected++
		}
		// One terminal outcome per id: distinct terminal events. The same
		// event twice is the documented at-least-once delivery (a sender
		// killed between publishing and marking it), a finding only outside
		// a crash window.
		n := len(kinds[id])
		r.MinTerminal, r.MaxTerminal = min(r.MinTerminal, n), max(r.MaxTerminal, n)
		switch {
		case n == 0:
			r.Lost++
			v = append(v, fmt.Sprintf("%s lost: table state %q, no terminal event, in the DLQ: %v", id, state, dlq[id]))
		case n > 1:
			v = append(v, fmt.Sprintf("%s has %d different terminal events", id, n))
		case terminal[id] > 1:
			r.DuplicateTerminal++
			if window[id] {
				r.DuplicateTerminalInWindow++
			} else {
				v = append(v, fmt.Sprintf("%s: its terminal event published %d times outside a crash window", id, terminal[id]))
			}
		}
		if lastSend[id] == delivery.Retrying {
			r.RetryingLast++
			v = append(v, fmt.Sprintf("%s: retrying is its last send event", id))
		}
		if expired[id] {
			r.Expired++
			if want[id] != "expire" && want[id] != "expiresat" {
				if f := r.judgeExpiry(id, calls[id]); f != "" {
					v = append(v, f)
				}
			}
		}
		accepts, resent := 0, false
		for _, q := range calls[id] {
			if accepts > 0 {
				resent = true
			}
			if q.Accepted {
				accepts++
			}
		}
		if want[id] == "invalid" && len(calls[id]) > 0 {
			v = append(v, fmt.Sprintf("%s is invalid but reached Skycore", id))
		}
		if accepts > 1 {
			r.SentTwice++
			if window[id] {
				r.SentTwiceInCrashWindow++
			}
			v = append(v, fmt.Sprintf("%s accepted by Skycore %d times (crash window: %v)", id, accepts, window[id]))
		}
		if resent {
			r.ResentAfterAccept++
		}
		if accepts == 0 && (state == store.StateAccepted || acceptedEvent[id]) {
			r.Forged++
			v = append(v, fmt.Sprintf("%s accepted (table %q, event %v) without any Skycore acceptance", id, state, acceptedEvent[id]))
		}
		if state == store.StateAccepted && accepts == 1 && m.AcceptedBy == "postback" {
			r.Reconciled++
		}
	}
	v = append(v, r.checkOptOuts(s.Events(), want, calls)...)
	v = append(v, r.checkExpiresAt(want, calls, firstTerminal)...)
	v = append(v, r.checkCancels(ids, kinds, canceledAt, calls)...)
	v = append(v, r.checkLongTracking(calls, firstTerminal)...)
	if len(done) > 0 {
		slices.SortFunc(done, func(a, b time.Time) int { return a.Compare(b) })
		r.P99Done = done[len(done)*99/100].Sub(started)
	}
	if r.PostbacksDropped > 0 {
		v = append(v, fmt.Sprintf("%d postbacks dropped by Skycore after its retries: delivery reports lost", r.PostbacksDropped))
	}
	if r.Unjoined > 0 {
		v = append(v, fmt.Sprintf("%d postback events for tracking ids mmsgate was given published with no id", r.Unjoined))
	}
	v = append(r.Violations, v...)
	if len(v) > 30 {
		v = append(v[:30], fmt.Sprintf("… and %d more", len(v)-30))
	}
	r.Violations = v
	return nil
}

// Failed reports whether an invariant broke.
func (r *Report) Failed() bool {
	return len(r.Violations) > 0 || r.Lost > 0 || r.SentTwice > 0 || r.MinTerminal != 1 || r.MaxTerminal != 1 || r.SentAfterOptOut > 0 ||
		r.Forged > 0 || r.Unjoined > 0 || r.OrderViolations > 0 || r.UnconfirmedWrong > 0 || r.MetadataMismatches > 0 || r.EarlySends > 0 ||
		r.SentAfterExpiresAt > 0 || r.CancelViolations > 0
}

// Line is the summary's last line.
func (r *Report) Line() string {
	per := fmt.Sprint(r.MinTerminal)
	if r.MinTerminal != r.MaxTerminal {
		per = fmt.Sprintf("%d-%d", r.MinTerminal, r.MaxTerminal)
	}
	return fmt.Sprintf("soak: ids %d, lost %d, sent twice %d, terminal events per id %s, forged acceptances %d, expired %d, in-doubt reconciled %d, resent after in-doubt window %d, sent after opt-out %d, metadata mismatches %d, early sends %d, sent after expiresAt %d, cancel violations %d, E113 %s",
		r.IDs, r.Lost, r.SentTwice, per, r.Forged, r.Expired, r.Reconciled, r.ResentAfterAccept, r.SentAfterOptOut, r.MetadataMismatches, r.EarlySends,
		r.SentAfterExpiresAt, r.CancelViolations, r.e113Share())
}

// e113Share is the share of calls the account-wide limit answered E113.
func (r *Report) e113Share() string {
	if r.Limit.Limit == 0 {
		return "off (no account limit)"
	}
	return fmt.Sprintf("%.1f %% at %d/s", 100*float64(r.Limit.E113)/float64(max(r.Limit.Calls, 1)), r.Limit.Limit)
}

// Print writes the summary table, then the cost table; its last two
// lines are the postback line and Line.
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
	row("duplicate SQS deliveries", fmt.Sprintf("%d (+%d of ids in flight while acceptance writes were refused)", r.DuplicateDeliveries, r.InFlightDuplicates))
	row("hostile messages (forged attributes, replays)", r.Hostile)
	row("forged receipt checks / redriven mid-run", fmt.Sprintf("%d / %d", r.ForgedChecks, r.Redriven))
	row("events read twice by the soak (same message id, not counted)", r.EventsReRead)
	row("requests with a sendAt ahead", fmt.Sprintf("%d (%d calls before their sendAt)", r.Scheduled, r.EarlySends))
	row("requests with an expiresAt in the outage", fmt.Sprintf("%d (%d expired EXPIRES_AT, %d calls at or after their expiresAt)", r.ExpiresAtIDs, r.ExpiredAtExpiresAt, r.SentAfterExpiresAt))
	row("cancels", fmt.Sprintf("%d (%d ids canceled, %d refused, %d violations)", r.CancelRequests, r.Canceled, r.cancels.refusedCount(), r.CancelViolations))
	row("windows", fmt.Sprintf("SEND_RETRY_WINDOW %s, SEND_INDOUBT_WINDOW %s, back-off %s", r.RetryWindow, r.InDoubtWindow, r.Backoff))
	row("Skycore calls", r.SkycoreCalls)
	row("faults injected", fmt.Sprintf("%d (%.1f %% of calls): %s", total, 100*float64(total)/float64(max(r.SkycoreCalls, 1)), strings.Join(faults, ", ")))
	row("account limit (E113 beyond)", fmt.Sprintf("%d calls/s: %d of %d calls answered E113 (%s)", r.Limit.Limit, r.Limit.E113, r.Limit.Calls, r.e113Share()))
	row("Skycore outage", fmt.Sprintf("%d calls failed in it", r.OutageCalls))
	row("accepted, never answered", r.AcceptFaults)
	row("accepted, answered oddly (in doubt) / tracking id over 2,048 bytes", fmt.Sprintf("%d / %d", r.OddAnswers, r.LongTrackingIDs))
	row("postback attempts", fmt.Sprintf("%d (%d answered 5xx once, %d redelivered, %d before the send's answer, %d without CLIENT_REFERENCE)",
		r.PostbackAttempts, r.Postback5xx, r.PostbackRedeliveries, r.EarlyPostbacks, r.OmittedReference))
	row("ids on a carrier without receipts", r.NoReceiptIDs)
	row("sender kills", fmt.Sprintf("%d (%d right after Skycore accepted, %d right after the claim, before the call)", r.Kills, r.KilledAfterAccept, r.KilledBeforeCall))
	row("DynamoDB calls throttled", fmt.Sprintf("%d (%d acceptance writes refused)", r.Throttled, r.AcceptRefused))
	row("accepted / rejected / in DLQ", fmt.Sprintf("%d / %d / %d (%d by the redrive backstop)", r.Accepted, r.Rejected, r.DeadLetter, r.RetriesExhausted))
	row("sent twice", fmt.Sprintf("%d (in a crash window: %d)", r.SentTwice, r.SentTwiceInCrashWindow))
	row("duplicate terminal events", fmt.Sprintf("%d (in a crash window: %d)", r.DuplicateTerminal, r.DuplicateTerminalInWindow))
	row("retrying as the last send event", r.RetryingLast)
	row(fmt.Sprintf("expired after %d+ stray faults outside the outage (bad luck)", MinCallsBeforeExpiry), r.ExpiredByStrayFaults)
	row("postback events / joined to the wrong id", fmt.Sprintf("%d / %d", r.PostbackEvents, r.Misjoined))
	row("events with their request's metadata / mismatches", fmt.Sprintf("%d / %d", r.MetadataEvents, r.MetadataMismatches))
	row("postbacks dropped after Skycore's retries", r.PostbacksDropped)
	row("opt-outs during the run / requests sent after one", fmt.Sprintf("%d / %d", r.OptOuts, r.SentAfterOptOut))
	row("wall time (99 % of ids final)", fmt.Sprintf("%s (%s)", r.Wall.Round(time.Millisecond), r.P99Done.Round(time.Millisecond)))
	row("throughput", fmt.Sprintf("%.0f msgs/s overall, %.0f msgs/s to 99 %%", r.MsgsPerSec(), 0.99*float64(r.Requests)/max(r.P99Done.Seconds(), 0.001)))
	row("peak RSS send-mms / postback", fmt.Sprintf("%.1f MiB / %.1f MiB", float64(r.PeakRSSKiB["send-mms"])/1024, float64(r.PeakRSSKiB["postback"])/1024))
	if !r.Failed() {
		row("invariants", "all hold")
	} else {
		row("invariants", fmt.Sprintf("BROKEN (%d findings)", len(r.Violations)))
	}
	tw.Flush()
	r.Usage.printCosts(w, r.Accepted, r.Requests)
	for _, v := range r.Violations {
		fmt.Fprintln(w, "  -", v)
	}
	fmt.Fprintf(w, "soak: unjoined events %d, order violations %d, unconfirmed %d (accepted ids without a final receipt %d, wrong %d)\n",
		r.Unjoined, r.OrderViolations, r.Unconfirmed, r.NoFinalReceipt, r.UnconfirmedWrong)
	fmt.Fprintln(w, r.Line())
}

// JSON is the report for tools.
func (r *Report) JSON() []byte {
	b, _ := json.MarshalIndent(r, "", "  ")
	return b
}

// optNumbers write STOP to the default code during the run (outside the
// numbers of the other requests).
var optNumbers = []string{"17746660001", "17746660002", "17746660003", "17746660004", "17746660005"}

// optOut has each number write STOP to the default code through the
// simulator's POST /_sim/mo, waits until the postback function has
// recorded every opt-out, then enqueues bodies (requests to those
// numbers): each is claimed after its opt-out is recorded, so none may
// reach Skycore.
func optOut(ctx context.Context, s *stack.Stack, nums, bodies []string) error {
	for _, num := range nums {
		b, _ := json.Marshal(sim.MO{From: num, To: "60856", Text: "STOP"})
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.SimURL+"/_sim/mo", strings.NewReader(string(b)))
		if err != nil {
			return err
		}
		req.Header.Set("Content-Type", "application/json")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return fmt.Errorf("POST /_sim/mo: %w", err)
		}
		resp.Body.Close()
		if resp.StatusCode/100 != 2 { // 202: the simulator posts it on its own
			return fmt.Errorf("POST /_sim/mo: %s", resp.Status)
		}
	}
	// Read past the fault proxy: the soak's own reads are not the
	// functions' calls the cost table and the throttle count measure.
	st := store.New(s.Env.DynamoDBDirect(), localenv.Table, 0)
	deadline := time.Now().Add(2 * time.Minute) // Skycore's retries (5 × 6 s here) outlast a busy moment
	for _, num := range nums {
		for {
			sup, err := st.SuppressedFor(ctx, num, "60856", "")
			if err == nil && sup != nil {
				break
			}
			if time.Now().After(deadline) {
				return fmt.Errorf("the opt-out of %s was not recorded within 2 min (last error %v)", num, err)
			}
			time.Sleep(200 * time.Millisecond)
		}
	}
	for _, b := range bodies {
		if err := s.Enqueue(b); err != nil {
			return err
		}
	}
	return nil
}

// checkOptOuts: every request enqueued after its number's opt-out is
// rejected OPTED_OUT, suppressed, without a Skycore call; each opt-out
// gave one optout event.
func (r *Report) checkOptOuts(events []delivery.Event, want map[string]string, calls map[string][]sim.Request) []string {
	var v []string
	got := map[string]delivery.Event{}
	for _, e := range events {
		switch {
		case e.Event == delivery.OptOut && e.From == "60856" && strings.HasPrefix(e.To, "1774666"):
			r.OptOuts++
		case want[e.ID] == "optedout" && delivery.Terminal(e.Event):
			got[e.ID] = e
		}
	}
	for id, kind := range want {
		if kind != "optedout" {
			continue
		}
		if n := len(calls[id]); n > 0 {
			r.SentAfterOptOut++
			v = append(v, fmt.Sprintf("%s: sent to Skycore %d times after its number opted out", id, n))
		}
		if e, ok := got[id]; ok && (e.Event != delivery.Rejected || e.Code != store.CodeOptedOut || !e.Suppressed) {
			v = append(v, fmt.Sprintf("%s: %s %s suppressed=%v after its number opted out, want rejected OPTED_OUT", id, e.Event, e.Code, e.Suppressed))
		}
	}
	if r.OptOuts != len(optNumbers) {
		v = append(v, fmt.Sprintf("%d optout events for the %d opt-outs", r.OptOuts, len(optNumbers)))
	}
	return v
}
