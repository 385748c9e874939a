package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/mmsgate/mmsgate/internal/localenv"
	"github.com/mmsgate/mmsgate/internal/sim"
	"github.com/mmsgate/mmsgate/internal/stack"
	"github.com/mmsgate/mmsgate/pkg/metric"
)

// The shared throughput (docs/configuration.md), on the local stack: four
// sender instances (one emulator each) against a simulator whose account
// takes limit calls a second (E113 beyond).
const (
	laneLimit     = 40 // calls per second
	laneInstances = 4
	laneRequests  = 800 // transactional requests of the throughput runs (20 s at the limit)
	laneBulk      = 10000
	laneProbes    = 40 // transactional requests sent while the bulk backlog waits
)

// throughputRun is one side of the comparison.
type throughputRun struct {
	name      string
	senderEnv []string
	sustained float64 // admitted calls a second over the busy middle
	e113      float64 // share of calls answered E113
	m         *throttleMetrics
}

// throttleMetrics sums the senders' pkg/throttle metrics (EMF lines in
// their logs): where the schedule's share of the limit goes.
type throttleMetrics struct {
	mu   sync.Mutex
	rest []byte
	sum  map[string]float64
}

func (m *throttleMetrics) Write(p []byte) (int, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.sum == nil {
		m.sum = map[string]float64{}
	}
	buf := append(m.rest, p...)
	for {
		i := bytes.IndexByte(buf, '\n')
		if i < 0 {
			break
		}
		line := buf[:i]
		buf = buf[i+1:]
		if !bytes.Contains(line, []byte(`"Throttle`)) {
			continue
		}
		var doc map[string]any
		if json.Unmarshal(line, &doc) != nil {
			continue
		}
		for _, n := range []string{metric.ThrottleLeases, metric.ThrottleSlots, metric.ThrottleForfeited, metric.ThrottleGap,
			metric.ThrottleCut, metric.ThrottleContended} {
			if v, ok := doc[n].(float64); ok {
				m.sum[n] += v
			}
		}
	}
	m.rest = append([]byte(nil), buf...)
	return len(p), nil
}

// String is the sums as one line: slots leased and forfeited, writes per
// slot, the schedule's dry time, and the E113 cuts.
func (m *throttleMetrics) String() string {
	m.mu.Lock()
	defer m.mu.Unlock()
	s := m.sum
	if s[metric.ThrottleSlots] == 0 {
		return "no slots leased"
	}
	return fmt.Sprintf("%.0f slots leased in %.0f writes (%.2f a slot, %.0f lost races), %.0f forfeited (%.1f %%), schedule dry %.0f ms, %.0f E113 cuts",
		s[metric.ThrottleSlots], s[metric.ThrottleLeases], s[metric.ThrottleLeases]/s[metric.ThrottleSlots], s[metric.ThrottleContended],
		s[metric.ThrottleForfeited], 100*s[metric.ThrottleForfeited]/s[metric.ThrottleSlots], s[metric.ThrottleGap], s[metric.ThrottleCut])
}

func lanes(ctx context.Context, bins stack.Binaries) []row {
	per := fmt.Sprintf("%g", float64(laneLimit)/laneInstances)
	runs := []*throughputRun{
		{name: "per-instance pacing (SEND_RATE_PER_SECOND=" + per + " × 4)", senderEnv: []string{"SEND_RATE_PER_SECOND=" + per}},
		{name: fmt.Sprintf("shared limit (SKYCORE_RATE_LIMIT=%d)", laneLimit), senderEnv: []string{fmt.Sprintf("SKYCORE_RATE_LIMIT=%d", laneLimit)}},
	}
	var rows []row
	for _, r := range runs {
		throughput(ctx, bins, r)
		if strings.HasPrefix(r.name, "shared") {
			fmt.Fprintf(os.Stderr, "  %s: %s\n", r.name, r.m)
		}
		rows = append(rows, row{fmt.Sprintf("%s: sustained calls, E113 (limit %d/s, %d instances)", r.name, laneLimit, laneInstances),
			"≥ 95 % of the limit, ≤ 1 % E113 (shared limit)",
			fmt.Sprintf("%.1f/s (%.0f %%), E113 %.1f %%", r.sustained, 100*r.sustained/laneLimit, 100*r.e113),
			!strings.HasPrefix(r.name, "shared") || (r.sustained >= 0.95*laneLimit && r.e113 <= 0.01)})
	}
	p99, n := transactionalBehindBulk(ctx, bins)
	rows = append(rows, row{fmt.Sprintf("transactional enqueue → Skycore call, behind %d bulk (p99)", n), "< 2 s",
		p99.Round(time.Millisecond).String(), p99 < 2*time.Second})
	shared := runs[1]
	fmt.Printf("throughput: limit %d/s, sustained %.1f/s (%.0f %%), E113 %.1f %%, transactional p99 %d ms behind %d bulk\n",
		laneLimit, shared.sustained, 100*shared.sustained/laneLimit, 100*shared.e113, p99.Milliseconds(), n)
	fmt.Printf("throttle: %s\n", shared.m)
	return rows
}

func laneStack(ctx context.Context, bins stack.Binaries, senderEnv []string, bulkInstances int, logs io.Writer) *stack.Stack {
	cfg := sim.Default()
	cfg.RateLimit = laneLimit
	cfg.Latency = sim.Latency{Fixed: sim.Duration(50 * time.Millisecond)}
	cfg.Scenarios = sim.Scenarios{Default: sim.ScenarioNone} // no postbacks: the senders alone
	s, err := stack.Start(ctx, bins, stack.Options{Sim: cfg, Senders: laneInstances, BulkSenders: bulkInstances, InProcess: true,
		SenderEnv: senderEnv, BatchSize: 10, Logs: logs})
	must(err)
	return s
}

// enqueue puts n bodies on a queue, ten a call.
func enqueue(ctx context.Context, s *stack.Stack, queue string, n int, body func(int) string) {
	q := s.Env.SQSClient()
	for i := 0; i < n; i += 10 {
		in := &sqs.SendMessageBatchInput{QueueUrl: aws.String(s.Env.URL(queue))}
		for j := i; j < min(n, i+10); j++ {
			in.Entries = append(in.Entries, sqstypes.SendMessageBatchRequestEntry{Id: aws.String(fmt.Sprint(j)), MessageBody: aws.String(body(j))})
		}
		_, err := q.SendMessageBatch(ctx, in)
		must(err)
	}
}

func throughput(ctx context.Context, bins stack.Binaries, r *throughputRun) {
	r.m = &throttleMetrics{}
	s := laneStack(ctx, bins, r.senderEnv, 0, r.m)
	defer s.Close()
	enqueue(ctx, s, localenv.SendQueue, laneRequests, func(i int) string {
		return fmt.Sprintf(`{"id":"tp-%d","to":"1774319%04d","mmsId":1000}`, i, i)
	})
	sctx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- s.Serve(sctx, nil) }()
	// Until every request was admitted once (E113 ones come back after
	// their back-off), or 90 s.
	deadline := time.Now().Add(90 * time.Second)
	for time.Now().Before(deadline) {
		ok := 0
		for _, q := range s.Sim.Requests() {
			if q.Accepted {
				ok++
			}
		}
		if ok >= laneRequests {
			break
		}
		time.Sleep(500 * time.Millisecond)
	}
	stop()
	<-done
	var admitted []time.Time
	calls, e113 := 0, 0
	for _, q := range s.Sim.Requests() {
		calls++
		if q.Code == "E113" {
			e113++
		} else {
			admitted = append(admitted, q.Time)
		}
	}
	slices.SortFunc(admitted, func(a, b time.Time) int { return a.Compare(b) })
	if len(admitted) > 4*laneLimit {
		// The busy middle: from the 5th to the 95th percentile of the
		// admission times, so that neither the start nor a straggler (a
		// request refused with E113, admitted after its back-off) counts
		// its idle time.
		i, j := len(admitted)*5/100, len(admitted)*95/100
		r.sustained = float64(j-i) / admitted[j].Sub(admitted[i]).Seconds()
	}
	if calls > 0 {
		r.e113 = float64(e113) / float64(calls)
	}
}

// transactionalBehindBulk queues laneBulk bulk requests, lets the senders
// work on them, then sends laneProbes transactional requests, 4 a second,
// and measures each one's time from enqueue to its Skycore call.
func transactionalBehindBulk(ctx context.Context, bins stack.Binaries) (time.Duration, int) {
	// The bulk lane's mapping has instances of its own, as on Lambda
	// (MaximumConcurrency per event source mapping): a transactional batch
	// never waits for an instance busy with a bulk one.
	s := laneStack(ctx, bins, []string{fmt.Sprintf("SKYCORE_RATE_LIMIT=%d", laneLimit)}, laneInstances, nil)
	defer s.Close()
	enqueue(ctx, s, localenv.BulkSendQueue, laneBulk, func(i int) string {
		return fmt.Sprintf(`{"id":"bulk-%d","to":"1774320%04d","mmsId":1000}`, i, i)
	})
	sctx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- s.Serve(sctx, nil) }()
	time.Sleep(5 * time.Second) // the bulk lane at full speed
	var mu sync.Mutex
	sent := map[string]time.Time{}
	for i := range laneProbes {
		id := fmt.Sprintf("tx-%d", i)
		mu.Lock()
		sent[id] = time.Now()
		mu.Unlock()
		_, err := s.Env.SendTo(ctx, localenv.SendQueue, fmt.Sprintf(`{"id":%q,"to":"17743219%03d","mmsId":1000}`, id, i), nil)
		must(err)
		time.Sleep(250 * time.Millisecond)
	}
	time.Sleep(5 * time.Second)
	stop()
	<-done
	first := map[string]time.Time{}
	for _, q := range s.Sim.Requests() {
		if _, ok := sent[q.ClientReference]; ok && q.Accepted {
			if t, seen := first[q.ClientReference]; !seen || q.Time.Before(t) {
				first[q.ClientReference] = q.Time
			}
		}
	}
	var waits []time.Duration
	for id, t := range sent {
		w, ok := first[id]
		if !ok {
			waits = append(waits, time.Hour) // never called: counts as a miss
			continue
		}
		waits = append(waits, w.Sub(t))
	}
	slices.Sort(waits)
	return waits[min(len(waits)-1, len(waits)*99/100)], laneBulk
}
