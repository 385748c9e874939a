package outbox

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"
)

// How the attack fake answers for one body.
const (
	ansOK       = "ok"       // Successful
	ansRefuse   = "refuse"   // Failed
	ansDrop     = "drop"     // in neither list
	ansBoth     = "both"     // in Successful and in Failed
	ansDup      = "dup"      // twice in Successful
	ansCallFail = "callfail" // the whole call fails
)

// atkSQS is a fake SQS that checks what it is sent and remembers, per
// body, how often it was sent and whether it confirmed it (and only it).
type atkSQS struct {
	// Set before use, read-only after.
	answer   map[string]string                // body -> ans*; missing is ansOK
	inputs   map[string]*sqs.SendMessageInput // body -> what the caller sent, when known
	latency  func() time.Duration
	honorCtx bool // fail calls whose ctx is done, as the SDK does
	// badIDs answers with ids that are not the ones sent: each entry's
	// canonical id with extra characters, and some junk.
	badIDs bool
	extra  bool // add junk ids ("99", "x", "-1", "") to every answer

	mu        sync.Mutex
	seen      map[string]int
	confirmed map[string]bool
	batches   int
	singles   int
	problems  []string
}

func newAtkSQS() *atkSQS {
	return &atkSQS{answer: map[string]string{}, inputs: map[string]*sqs.SendMessageInput{},
		seen: map[string]int{}, confirmed: map[string]bool{}}
}

func (f *atkSQS) problem(format string, args ...any) {
	f.problems = append(f.problems, fmt.Sprintf(format, args...))
}

func (f *atkSQS) wait(ctx context.Context) error {
	if f.latency != nil {
		if d := f.latency(); d > 0 {
			select {
			case <-time.After(d):
			case <-ctx.Done():
				if f.honorCtx {
					return ctx.Err()
				}
				<-time.After(d)
			}
		}
	}
	if f.honorCtx {
		return ctx.Err()
	}
	return nil
}

func (f *atkSQS) SendMessage(ctx context.Context, in *sqs.SendMessageInput, _ ...func(*sqs.Options)) (*sqs.SendMessageOutput, error) {
	b := aws.ToString(in.MessageBody)
	f.mu.Lock()
	f.seen[b]++
	f.singles++
	f.mu.Unlock()
	if err := f.wait(ctx); err != nil {
		return nil, err
	}
	switch f.answer[b] {
	case ansRefuse, ansDrop, ansBoth, ansCallFail:
		return nil, errors.New("single refused: " + b)
	}
	f.mu.Lock()
	f.confirmed[b] = true
	f.mu.Unlock()
	return &sqs.SendMessageOutput{MessageId: aws.String("id-" + b)}, nil
}

func entrySize(e sqstypes.SendMessageBatchRequestEntry) int {
	n := len(aws.ToString(e.MessageBody))
	for k, v := range e.MessageAttributes {
		n += len(k) + len(aws.ToString(v.DataType)) + len(aws.ToString(v.StringValue)) + len(v.BinaryValue)
	}
	return n
}

func (f *atkSQS) SendMessageBatch(ctx context.Context, in *sqs.SendMessageBatchInput, _ ...func(*sqs.Options)) (*sqs.SendMessageBatchOutput, error) {
	f.mu.Lock()
	f.batches++
	if n := len(in.Entries); n == 0 || n > MaxEntries {
		f.problem("batch of %d entries", n)
	}
	ids := map[string]bool{}
	size, callFail := 0, false
	for _, e := range in.Entries {
		b := aws.ToString(e.MessageBody)
		f.seen[b]++
		id := aws.ToString(e.Id)
		if ids[id] || id == "" {
			f.problem("id %q twice or empty", id)
		}
		ids[id] = true
		size += entrySize(e)
		if orig := f.inputs[b]; orig != nil {
			if aws.ToString(orig.QueueUrl) != aws.ToString(in.QueueUrl) {
				f.problem("%s sent to %s, want %s", b, aws.ToString(in.QueueUrl), aws.ToString(orig.QueueUrl))
			}
			if orig.DelaySeconds != e.DelaySeconds || len(orig.MessageAttributes) != len(e.MessageAttributes) ||
				len(orig.MessageSystemAttributes) != len(e.MessageSystemAttributes) {
				f.problem("%s: entry differs from its input", b)
			}
			for k, v := range orig.MessageAttributes {
				if aws.ToString(e.MessageAttributes[k].StringValue) != aws.ToString(v.StringValue) {
					f.problem("%s: attribute %s differs", b, k)
				}
			}
		}
		if f.answer[b] == ansCallFail {
			callFail = true
		}
	}
	if size > 256*1024 {
		f.problem("batch payload %d bytes", size)
	}
	f.mu.Unlock()
	if err := f.wait(ctx); err != nil {
		return nil, err
	}
	if callFail {
		return nil, errors.New("batch call failed")
	}
	out := &sqs.SendMessageBatchOutput{}
	ok := func(id *string, b string) {
		out.Successful = append(out.Successful, sqstypes.SendMessageBatchResultEntry{Id: id, MessageId: aws.String("id-" + b)})
	}
	fail := func(id *string) {
		out.Failed = append(out.Failed, sqstypes.BatchResultErrorEntry{Id: id, Code: aws.String("InternalError")})
	}
	var confirmed []string
	for i, e := range in.Entries {
		b := aws.ToString(e.MessageBody)
		id := e.Id
		if f.badIDs {
			// Not an id that was sent: "0" + id, or "+" + id.
			id = aws.String([]string{"0", "+"}[i%2] + aws.ToString(e.Id))
			ok(id, b)
			continue
		}
		switch f.answer[b] {
		case ansRefuse:
			fail(id)
		case ansDrop:
		case ansBoth:
			ok(id, b)
			fail(id)
		case ansDup:
			ok(id, b)
			ok(id, b)
			confirmed = append(confirmed, b)
		default:
			ok(id, b)
			confirmed = append(confirmed, b)
		}
	}
	if f.extra {
		for _, id := range []string{"99", "x", "-1", "", strconv.Itoa(len(in.Entries))} {
			ok(aws.String(id), "junk")
			fail(aws.String(id))
		}
		out.Successful = append(out.Successful, sqstypes.SendMessageBatchResultEntry{Id: nil, MessageId: aws.String("id-nil")})
	}
	// Answers in any order.
	rand.Shuffle(len(out.Successful), func(i, j int) { out.Successful[i], out.Successful[j] = out.Successful[j], out.Successful[i] })
	rand.Shuffle(len(out.Failed), func(i, j int) { out.Failed[i], out.Failed[j] = out.Failed[j], out.Failed[i] })
	f.mu.Lock()
	for _, b := range confirmed {
		f.confirmed[b] = true
	}
	f.mu.Unlock()
	return out, nil
}

type atkResult struct {
	out  *sqs.SendMessageOutput
	err  error
	done bool
}

// atkResults collects each body's outcome.
type atkResults struct {
	mu sync.Mutex
	m  map[string]*atkResult
}

func (r *atkResults) put(body string, out *sqs.SendMessageOutput, err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.m == nil {
		r.m = map[string]*atkResult{}
	}
	if r.m[body] != nil {
		panic("body returned twice: " + body)
	}
	r.m[body] = &atkResult{out: out, err: err, done: true}
}

// check asserts: every body was sent exactly once, a caller got success
// exactly when the fake confirmed its own entry, with its own message id.
func (f *atkSQS) check(t *testing.T, all []string, res *atkResults) {
	t.Helper()
	f.mu.Lock()
	defer f.mu.Unlock()
	res.mu.Lock()
	defer res.mu.Unlock()
	for _, p := range f.problems {
		t.Error(p)
	}
	want := map[string]bool{}
	for _, b := range all {
		want[b] = true
		if n := f.seen[b]; n != 1 {
			t.Errorf("%.40s: sent %d times, want once", b, n)
		}
		r := res.m[b]
		if r == nil {
			t.Errorf("%.40s: its SendMessage never returned", b)
			continue
		}
		if f.confirmed[b] != (r.err == nil) {
			t.Errorf("%.40s (%s): confirmed %v but err %v", b, f.answer[b], f.confirmed[b], r.err)
		}
		if r.err == nil && (r.out == nil || aws.ToString(r.out.MessageId) != "id-"+b) {
			t.Errorf("%.40s: success with output %+v, want its own message id", b, r.out)
		}
	}
	for b := range f.seen {
		if !want[b] {
			t.Errorf("%.40s: sent but never asked for", b)
		}
	}
}

// waitAll fails the test when fn does not return within d: a deadlock.
func waitAll(t *testing.T, d time.Duration, fn func()) {
	t.Helper()
	done := make(chan struct{})
	go func() { defer close(done); fn() }()
	select {
	case <-done:
	case <-time.After(d):
		t.Fatalf("callers still waiting after %v: deadlock", d)
	}
}

// pendingLen reports how many entries wait for url.
func pendingLen(o *Outbox, url string) int {
	o.def.mu.Lock()
	defer o.def.mu.Unlock()
	return len(o.def.pending[url])
}

func waitPending(t *testing.T, o *Outbox, url string, n int) {
	t.Helper()
	deadline := time.Now().Add(2 * time.Second)
	for pendingLen(o, url) != n {
		if time.Now().After(deadline) {
			t.Fatalf("pending[%s] = %d, want %d", url, pendingLen(o, url), n)
		}
		time.Sleep(100 * time.Microsecond)
	}
}

// blocked reports whether ch stays open for d.
func blocked(ch <-chan struct{}, d time.Duration) bool {
	select {
	case <-ch:
		return false
	case <-time.After(d):
		return true
	}
}

func msg(q, body string) *sqs.SendMessageInput {
	return &sqs.SendMessageInput{QueueUrl: aws.String(q), MessageBody: aws.String(body)}
}

// Many callers joining, working, sending (to several queues, some at
// once, some that cannot be batched) and leaving at random times, with
// random answers: every message is sent once, every caller returns with
// its own outcome.
func TestAttackRandom(t *testing.T) {
	queues := []string{"q0", "q1", "q2"}
	modes := []string{ansOK, ansOK, ansOK, ansOK, ansRefuse, ansDrop, ansBoth, ansDup, ansCallFail}
	lingers := []time.Duration{0, 200 * time.Microsecond, 2 * time.Millisecond, time.Hour}
	for iter := range 40 {
		seed := uint64(time.Now().UnixNano()) + uint64(iter)
		rng := rand.New(rand.NewPCG(seed, 7))
		f := newAtkSQS()
		f.extra = rng.IntN(2) == 0
		lat := rng.IntN(3)
		var latMu sync.Mutex
		latRng := rand.New(rand.NewPCG(seed, 8))
		f.latency = func() time.Duration {
			latMu.Lock()
			defer latMu.Unlock()
			return time.Duration(latRng.IntN(lat*300+1)) * time.Microsecond
		}
		o := New(f)
		o.Linger = lingers[rng.IntN(len(lingers))]

		type send struct {
			in     *sqs.SendMessageInput
			direct int // 0 batched; 1 not joined; 2 with opts
		}
		type caller struct {
			joinDelay, work time.Duration
			sends           []send
			together        bool // sends from several goroutines at once
			leaveTwice      bool
		}
		var callers []caller
		var all []string
		for c := range 1 + rng.IntN(30) {
			cl := caller{
				joinDelay:  time.Duration(rng.IntN(3)*rng.IntN(1000)) * time.Microsecond,
				work:       time.Duration(rng.IntN(1500)) * time.Microsecond,
				together:   rng.IntN(4) == 0,
				leaveTwice: rng.IntN(4) == 0,
			}
			for s := range rng.IntN(4) {
				b := fmt.Sprintf("i%d-c%d-s%d", iter, c, s)
				in := msg(queues[rng.IntN(len(queues))], b)
				sd := send{in: in}
				switch rng.IntN(12) {
				case 0: // too big: alone
					b += strings.Repeat("x", MaxEntryBytes)
				case 1: // exactly at the limit, counting an attribute
					in.MessageAttributes = map[string]sqstypes.MessageAttributeValue{"k": {DataType: aws.String("String"), StringValue: aws.String("v")}}
					b += strings.Repeat("y", MaxEntryBytes-len(b)-len("k")-len("String")-len("v"))
				case 2:
					in.MessageGroupId = aws.String("g")
				case 3:
					sd.direct = 1
				case 4:
					sd.direct = 2
				case 5:
					in.DelaySeconds = int32(rng.IntN(900))
				}
				in.MessageBody = aws.String(b)
				f.answer[b] = modes[rng.IntN(len(modes))]
				f.inputs[b] = in
				all = append(all, b)
				cl.sends = append(cl.sends, sd)
			}
			callers = append(callers, cl)
		}

		res := &atkResults{}
		do := func(jctx context.Context, sd send) {
			ctx := jctx
			var opts []func(*sqs.Options)
			switch sd.direct {
			case 1:
				ctx = t.Context()
			case 2:
				opts = append(opts, func(*sqs.Options) {})
			}
			out, err := o.SendMessage(ctx, sd.in, opts...)
			res.put(aws.ToString(sd.in.MessageBody), out, err)
		}
		waitAll(t, 5*time.Second, func() {
			var wg sync.WaitGroup
			for _, cl := range callers {
				wg.Go(func() {
					time.Sleep(cl.joinDelay)
					jctx, leave := o.Join(t.Context())
					time.Sleep(cl.work)
					if cl.together {
						var sg sync.WaitGroup
						for _, sd := range cl.sends {
							sg.Go(func() { do(jctx, sd) })
						}
						sg.Wait()
					} else {
						for _, sd := range cl.sends {
							do(jctx, sd)
							time.Sleep(cl.work / 4)
						}
					}
					leave()
					if cl.leaveTwice {
						leave()
					}
				})
			}
			wg.Wait()
		})
		f.check(t, all, res)
		o.def.mu.Lock()
		if o.def.open != 0 || o.def.waiting != 0 || len(o.def.pending) != 0 || o.def.timer != nil {
			t.Errorf("seed %d: left open %d, waiting %d, pending %d, timer %v", seed, o.def.open, o.def.waiting, len(o.def.pending), o.def.timer != nil)
		}
		o.def.mu.Unlock()
		if t.Failed() {
			t.Fatalf("seed %d, linger %v", seed, o.Linger)
		}
	}
}

// leave twice counts once: the third caller, still at work, holds the
// send up.
func TestAttackLeaveTwice(t *testing.T) {
	f := newAtkSQS()
	o := New(f)
	o.Linger = time.Hour
	_, leaveA := o.Join(t.Context())
	ctxB, leaveB := o.Join(t.Context())
	_, leaveC := o.Join(t.Context())
	leaveA()
	leaveA()
	done := make(chan struct{})
	res := &atkResults{}
	go func() {
		defer close(done)
		defer leaveB()
		out, err := o.SendMessage(ctxB, msg("q", "b"))
		res.put("b", out, err)
	}()
	if !blocked(done, 50*time.Millisecond) {
		t.Fatal("sent while a joined caller was still at work")
	}
	leaveC()
	waitAll(t, 2*time.Second, func() { <-done })
	f.check(t, []string{"b"}, res)
}

// A caller that joins after another already waits holds it up; when the
// one that was at work leaves, the newcomer still does.
func TestAttackJoinWhileOthersWait(t *testing.T) {
	f := newAtkSQS()
	o := New(f)
	o.Linger = time.Hour
	ctxA, leaveA := o.Join(t.Context())
	_, leaveB := o.Join(t.Context())
	done := make(chan struct{})
	res := &atkResults{}
	go func() {
		defer close(done)
		defer leaveA()
		out, err := o.SendMessage(ctxA, msg("q", "a"))
		res.put("a", out, err)
	}()
	waitPending(t, o, "q", 1)
	ctxC, leaveC := o.Join(t.Context())
	leaveB()
	if !blocked(done, 50*time.Millisecond) {
		t.Fatal("sent while the newcomer was at work")
	}
	doneC := make(chan struct{})
	go func() {
		defer close(doneC)
		defer leaveC()
		out, err := o.SendMessage(ctxC, msg("q", "c"))
		res.put("c", out, err)
	}()
	waitAll(t, 2*time.Second, func() { <-done; <-doneC })
	f.check(t, []string{"a", "c"}, res)
	if f.batches != 1 || f.singles != 0 {
		t.Errorf("%d batches, %d singles; want a and c in one batch", f.batches, f.singles)
	}
}

// Ten entries fill a batch while the linger timer, armed for another
// queue's entry, runs: that one still goes out at Linger, once.
func TestAttackFullBatchWhileTimerArmed(t *testing.T) {
	f := newAtkSQS()
	o := New(f)
	o.Linger = 100 * time.Millisecond
	_, leaveBusy := o.Join(t.Context()) // at work throughout
	defer leaveBusy()
	res := &atkResults{}
	var all []string
	var wg sync.WaitGroup
	start := time.Now()
	ctxX, leaveX := o.Join(t.Context())
	all = append(all, "x")
	wg.Go(func() {
		defer leaveX()
		out, err := o.SendMessage(ctxX, msg("other", "x"))
		res.put("x", out, err)
	})
	waitPending(t, o, "other", 1)
	var ctxs []context.Context
	var leaves []func()
	for range MaxEntries {
		c, l := o.Join(t.Context())
		ctxs, leaves = append(ctxs, c), append(leaves, l)
	}
	full := make(chan struct{})
	var fg sync.WaitGroup
	for i := range MaxEntries {
		b := fmt.Sprintf("f%d", i)
		all = append(all, b)
		fg.Go(func() {
			defer leaves[i]()
			out, err := o.SendMessage(ctxs[i], msg("q", b))
			res.put(b, out, err)
		})
	}
	go func() { fg.Wait(); close(full) }()
	waitAll(t, 2*time.Second, func() { <-full })
	if time.Since(start) >= o.Linger {
		t.Skip("too slow a machine to tell the full batch from the timer")
	}
	waitAll(t, 2*time.Second, wg.Wait)
	if d := time.Since(start); d < o.Linger-10*time.Millisecond {
		t.Errorf("x sent after %v, before Linger, while a caller was at work", d)
	}
	f.check(t, all, res)
	if f.batches != 1 || f.singles != 1 {
		t.Errorf("%d batches, %d singles; want one full batch and x alone", f.batches, f.singles)
	}
}

// The linger timer and an everyone-waits flush race: each message is still
// sent once.
func TestAttackTimerRacesAllWait(t *testing.T) {
	for i := range 200 {
		f := newAtkSQS()
		o := New(f)
		o.Linger = time.Duration(rand.IntN(300)) * time.Microsecond
		n := 1 + rand.IntN(25)
		var all []string
		for c := range n {
			all = append(all, fmt.Sprintf("r%d-%d", i, c))
		}
		res := sendEachWith(t, o, all, func(c int, b string) *sqs.SendMessageInput {
			time.Sleep(time.Duration(rand.IntN(300)) * time.Microsecond)
			return msg([]string{"a", "b"}[c%2], b)
		})
		f.check(t, all, res)
		if t.Failed() {
			t.FailNow()
		}
	}
}

// Zero Linger: nothing waits for others, everything is sent once.
func TestAttackZeroLinger(t *testing.T) {
	f := newAtkSQS()
	o := New(f)
	o.Linger = 0
	_, leaveBusy := o.Join(t.Context()) // would hold everything up but for Linger
	defer leaveBusy()
	var all []string
	res := &atkResults{}
	waitAll(t, 2*time.Second, func() {
		var wg sync.WaitGroup
		for c := range 30 {
			b := fmt.Sprintf("z%d", c)
			all = append(all, b)
			wg.Go(func() {
				ctx, leave := o.Join(t.Context())
				defer leave()
				out, err := o.SendMessage(ctx, msg("q", b))
				res.put(b, out, err)
			})
		}
		wg.Wait()
	})
	f.check(t, all, res)
}

// Size limit: attributes count; exactly MaxEntryBytes is batched, one
// byte more is sent alone.
func TestAttackSizeBoundary(t *testing.T) {
	attrs := map[string]sqstypes.MessageAttributeValue{
		"event": {DataType: aws.String("String"), StringValue: aws.String("accepted")},
		"bin":   {DataType: aws.String("Binary"), BinaryValue: []byte("0123456789")},
	}
	attrBytes := len("event") + len("String") + len("accepted") + len("bin") + len("Binary") + 10
	for _, tt := range []struct {
		name  string
		body  int
		attrs bool
		batch bool
	}{
		{"body at the limit", MaxEntryBytes, false, true},
		{"body one over", MaxEntryBytes + 1, false, false},
		{"body and attributes at the limit", MaxEntryBytes - attrBytes, true, true},
		{"attributes push it over", MaxEntryBytes - attrBytes + 1, true, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			f := newAtkSQS()
			o := New(f)
			o.Linger = time.Hour
			var all []string
			for i := range MaxEntries {
				b := fmt.Sprintf("%d", i)
				b += strings.Repeat("s", tt.body-len(b))
				all = append(all, b)
				in := msg("q", b)
				if tt.attrs {
					in.MessageAttributes = attrs
				}
				f.inputs[b] = in
			}
			res := sendEachWith(t, o, all, func(_ int, b string) *sqs.SendMessageInput { return f.inputs[b] })
			f.check(t, all, res)
			if tt.batch && (f.batches != 1 || f.singles != 0) || !tt.batch && (f.batches != 0 || f.singles != MaxEntries) {
				t.Errorf("%d batches, %d singles", f.batches, f.singles)
			}
		})
	}
}

// Answers with duplicated ids, unknown ids, a nil id, and both Successful
// and Failed for one id: no entry is taken for sent unless confirmed.
func TestAttackOddAnswers(t *testing.T) {
	f := newAtkSQS()
	f.extra = true
	var all []string
	for i, m := range []string{ansOK, ansDup, ansBoth, ansRefuse, ansDrop, ansOK, ansBoth, ansDup, ansDrop} {
		b := fmt.Sprintf("%s%d", m, i)
		f.answer[b] = m
		all = append(all, b)
	}
	o := New(f)
	o.Linger = time.Hour
	res := sendEach(t, o, all)
	f.check(t, all, res)
}

// An answer whose ids are not the ones sent ("00", "+1": numerically an
// entry's index, textually no id of the request) confirms nothing.
func TestAttackNonCanonicalIDs(t *testing.T) {
	f := newAtkSQS()
	f.badIDs = true
	o := New(f)
	o.Linger = time.Hour
	all := []string{"a", "b", "c", "d"}
	res := sendEach(t, o, all)
	for _, b := range all {
		if r := res.m[b]; r.err == nil {
			t.Errorf("%s: success from an answer that never named its id (%q)", b, aws.ToString(r.out.MessageId))
		}
	}
}

// A caller's message goes out with its own context's fate, not with that
// of whichever other caller (or stale timer) happens to flush it.
func TestAttackOthersContext(t *testing.T) {
	t.Run("timer armed by a caller long gone", func(t *testing.T) {
		f := newAtkSQS()
		f.honorCtx = true
		o := New(f)
		o.Linger = 150 * time.Millisecond
		_, leaveBusy := o.Join(t.Context()) // at work: only the timer flushes
		defer leaveBusy()
		// A arms the timer with its context, goes out in a full batch of
		// q1, returns, and its record's context ends.
		ctxA, cancelA := context.WithCancel(t.Context())
		jA, leaveA := o.Join(ctxA)
		var ctxs []context.Context
		var leaves []func()
		for range MaxEntries - 1 {
			c, l := o.Join(t.Context())
			ctxs, leaves = append(ctxs, c), append(leaves, l)
		}
		ctxB, leaveB := o.Join(t.Context())
		res := &atkResults{}
		var wg sync.WaitGroup
		wg.Go(func() {
			out, err := o.SendMessage(jA, msg("q1", "a"))
			res.put("a", out, err)
			leaveA()
			cancelA()
		})
		waitPending(t, o, "q1", 1)
		for i := range MaxEntries - 1 {
			b := fmt.Sprintf("f%d", i)
			wg.Go(func() {
				defer leaves[i]()
				out, err := o.SendMessage(ctxs[i], msg("q1", b))
				res.put(b, out, err)
			})
		}
		waitAll(t, 2*time.Second, wg.Wait)
		// B, whose context is fine, sends to q2; the timer A armed sends it.
		waitAll(t, 2*time.Second, func() {
			defer leaveB()
			out, err := o.SendMessage(ctxB, msg("q2", "b"))
			res.put("b", out, err)
		})
		if err := res.m["b"].err; err != nil {
			t.Errorf("b failed with another caller's context: %v", err)
		}
	})
	t.Run("flushed by a leaving caller whose context ended", func(t *testing.T) {
		f := newAtkSQS()
		f.honorCtx = true
		o := New(f)
		o.Linger = time.Hour
		ctxL, cancelL := context.WithCancel(t.Context())
		_, leaveL := o.Join(ctxL)
		ctxA, leaveA := o.Join(t.Context())
		ctxB, leaveB := o.Join(t.Context())
		res := &atkResults{}
		var wg sync.WaitGroup
		for _, s := range []struct {
			ctx   context.Context
			leave func()
			b     string
		}{{ctxA, leaveA, "a"}, {ctxB, leaveB, "b"}} {
			wg.Go(func() {
				defer s.leave()
				out, err := o.SendMessage(s.ctx, msg("q", s.b))
				res.put(s.b, out, err)
			})
		}
		waitPending(t, o, "q", 2)
		cancelL() // L's own work timed out; it gives up and leaves
		leaveL()
		waitAll(t, 2*time.Second, wg.Wait)
		for _, b := range []string{"a", "b"} {
			if err := res.m[b].err; err != nil {
				t.Errorf("%s failed with the leaving caller's context: %v", b, err)
			}
		}
	})
	t.Run("flusher's deadline passes mid-call", func(t *testing.T) {
		f := newAtkSQS()
		f.honorCtx = true
		f.latency = func() time.Duration { return 50 * time.Millisecond }
		o := New(f)
		o.Linger = time.Hour
		ctxA, leaveA := o.Join(t.Context())
		short, cancel := context.WithTimeout(t.Context(), 20*time.Millisecond)
		defer cancel()
		ctxB, leaveB := o.Join(short)
		res := &atkResults{}
		var wg sync.WaitGroup
		wg.Go(func() {
			defer leaveA()
			out, err := o.SendMessage(ctxA, msg("q", "a"))
			res.put("a", out, err)
		})
		waitPending(t, o, "q", 1)
		wg.Go(func() { // the last to wait: the batch goes out with its context
			defer leaveB()
			out, err := o.SendMessage(ctxB, msg("q", "b"))
			res.put("b", out, err)
		})
		waitAll(t, 2*time.Second, wg.Wait)
		if err := res.m["a"].err; err != nil {
			t.Errorf("a failed with b's deadline: %v", err)
		}
	})
}

// sendEach joins one caller per body, then has each send its body to q
// at once and leave; every caller must return within 2 s.
func sendEach(t *testing.T, o *Outbox, bodies []string) *atkResults {
	return sendEachWith(t, o, bodies, func(_ int, b string) *sqs.SendMessageInput { return msg("q", b) })
}

// sendEachWith is sendEach with caller i's input built (in its own
// goroutine, just before it sends) by in.
func sendEachWith(t *testing.T, o *Outbox, bodies []string, in func(i int, body string) *sqs.SendMessageInput) *atkResults {
	t.Helper()
	var ctxs []context.Context
	var leaves []func()
	for range bodies {
		c, l := o.Join(t.Context())
		ctxs, leaves = append(ctxs, c), append(leaves, l)
	}
	res := &atkResults{}
	waitAll(t, 2*time.Second, func() {
		var wg sync.WaitGroup
		for i, b := range bodies {
			wg.Go(func() {
				defer leaves[i]()
				out, err := o.SendMessage(ctxs[i], in(i, b))
				res.put(b, out, err)
			})
		}
		wg.Wait()
	})
	return res
}
