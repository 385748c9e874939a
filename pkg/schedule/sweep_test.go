package schedule_test

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/aws-sdk-go-v2/service/sqs"

	"github.com/mmsgate/mmsgate/internal/localenv"
	"github.com/mmsgate/mmsgate/internal/memdb"
	"github.com/mmsgate/mmsgate/pkg/schedule"
	"github.com/mmsgate/mmsgate/pkg/store"
)

// clock is the simulated time of the store, the sweeper and the queue.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time  { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) set(t time.Time) { c.mu.Lock(); c.t = t; c.mu.Unlock() }

// index is the due GSI over memdb, which has none: a Scan filtered by the
// key condition, projected to the index's keys, in dueMs order. stale, when
// set, is served instead (a GSI is eventually consistent).
type index struct {
	db    *memdb.DB
	mu    sync.Mutex
	stale []map[string]types.AttributeValue
}

func (x *index) snapshot(ctx context.Context) []map[string]types.AttributeValue {
	out, err := x.db.Scan(ctx, &dynamodb.ScanInput{TableName: aws.String(localenv.Table),
		FilterExpression: aws.String("attribute_exists(dueMs)")})
	if err != nil {
		panic(err)
	}
	return out.Items
}

func (x *index) Query(ctx context.Context, in *dynamodb.QueryInput, _ ...func(*dynamodb.Options)) (*dynamodb.QueryOutput, error) {
	if aws.ToString(in.IndexName) != store.DueIndex || aws.ToString(in.KeyConditionExpression) != "#shard = :shard AND #due <= :until" {
		return nil, fmt.Errorf("unexpected query %+v", in)
	}
	x.mu.Lock()
	items := x.stale
	x.mu.Unlock()
	if items == nil {
		items = x.snapshot(ctx)
	}
	shard := in.ExpressionAttributeValues[":shard"].(*types.AttributeValueMemberS).Value
	until := in.ExpressionAttributeValues[":until"].(*types.AttributeValueMemberN).Value
	var out []map[string]types.AttributeValue
	for _, it := range items {
		if it["dueShard"].(*types.AttributeValueMemberS).Value != shard || cmpNum(it["dueMs"], until) > 0 {
			continue
		}
		out = append(out, map[string]types.AttributeValue{"pk": it["pk"], "dueShard": it["dueShard"], "dueMs": it["dueMs"]})
	}
	slices.SortFunc(out, func(a, b map[string]types.AttributeValue) int {
		return cmp.Or(cmpNum(a["dueMs"], b["dueMs"].(*types.AttributeValueMemberN).Value),
			cmp.Compare(a["pk"].(*types.AttributeValueMemberS).Value, b["pk"].(*types.AttributeValueMemberS).Value))
	})
	start := 0
	if k := in.ExclusiveStartKey; k != nil {
		start = slices.IndexFunc(out, func(it map[string]types.AttributeValue) bool {
			return it["pk"].(*types.AttributeValueMemberS).Value == k["pk"].(*types.AttributeValueMemberS).Value
		}) + 1
	}
	out = out[start:]
	res := &dynamodb.QueryOutput{Items: out}
	if l := int(aws.ToInt32(in.Limit)); l > 0 && len(out) > l {
		res.Items = out[:l]
		res.LastEvaluatedKey = out[l-1]
	}
	return res, nil
}

func cmpNum(a types.AttributeValue, b string) int {
	var x, y int64
	fmt.Sscan(a.(*types.AttributeValueMemberN).Value, &x)
	fmt.Sscan(b, &y)
	return cmp.Compare(x, y)
}

// sent is one SendMessage: the body, and when it becomes visible.
type sent struct {
	Queue, Body string
	Visible     time.Time
}

// queue records sends; fail, when set, refuses them.
type queue struct {
	c    *clock
	mu   sync.Mutex
	msgs []sent
	fail error
}

func (q *queue) SendMessage(_ context.Context, in *sqs.SendMessageInput, _ ...func(*sqs.Options)) (*sqs.SendMessageOutput, error) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.fail != nil {
		return nil, q.fail
	}
	if in.DelaySeconds < 0 || in.DelaySeconds > 900 {
		return nil, fmt.Errorf("DelaySeconds %d", in.DelaySeconds)
	}
	q.msgs = append(q.msgs, sent{Queue: aws.ToString(in.QueueUrl), Body: aws.ToString(in.MessageBody),
		Visible: q.c.now().Add(time.Duration(in.DelaySeconds) * time.Second)})
	return &sqs.SendMessageOutput{}, nil
}

func (q *queue) take() []sent {
	q.mu.Lock()
	defer q.mu.Unlock()
	out := q.msgs
	q.msgs = nil
	return out
}

// failUnschedule is the store with Unschedule failing: a sweeper that
// dies between its SendMessage and its last write.
type failUnschedule struct{ *store.Store }

func (failUnschedule) Unschedule(context.Context, string, time.Time) (bool, *store.Message, error) {
	return false, nil, errors.New("crashed")
}

type fixture struct {
	st  *store.Store
	c   *clock
	idx *index
	q   *queue
	sw  *schedule.Sweeper
}

func setup(t *testing.T) *fixture {
	t.Helper()
	db := memdb.New()
	if err := store.CreateTable(context.Background(), db, localenv.Table); err != nil {
		t.Fatal(err)
	}
	f := &fixture{st: store.New(db, localenv.Table, 0), c: &clock{t: time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC)}, idx: &index{db: db}}
	f.q = &queue{c: f.c}
	f.st.SetClock(f.c.now)
	f.sw = f.sweeper(f.st)
	return f
}

func (f *fixture) sweeper(r interface {
	Due(context.Context, store.Querier, time.Time, int) ([]store.DueItem, error)
	ClaimDue(context.Context, string, time.Time, time.Duration) (bool, *store.Scheduled, error)
	Unschedule(context.Context, string, time.Time) (bool, *store.Message, error)
}) *schedule.Sweeper {
	sw := schedule.New(schedule.Config{SendQueueURL: "send", BulkSendQueueURL: "bulk"}, schedule.Deps{Store: r, Index: f.idx, Queue: f.q})
	sw.SetClock(f.c.now)
	return sw
}

// schedule records id as a sender does: the record, its event published.
func (f *fixture) schedule(t *testing.T, id string, sendAt time.Time, lane string) {
	t.Helper()
	ctx := context.Background()
	won, _, err := f.st.RecordSchedule(ctx, id, store.ScheduleRequest{Body: `{"id":"` + id + `"}`, SendAt: sendAt, Lane: lane,
		Owner: "sender", Hold: f.c.now().Add(time.Minute)})
	if err != nil || !won {
		t.Fatalf("RecordSchedule(%s) = %v, %v", id, won, err)
	}
	if err := f.st.ScheduledEventSent(ctx, id); err != nil {
		t.Fatal(err)
	}
}

func (f *fixture) sweep(t *testing.T) schedule.Report {
	t.Helper()
	r, err := f.sw.Sweep(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// TestSweepThirtyDaysAhead: a request scheduled 30 days ahead has nothing
// on a queue while it waits (so no retention can lose it), is handed off
// by the sweep within Lookahead of its sendAt, visible on its lane's queue
// at its sendAt (rounded up to the second), and then claimed as a fresh
// request whose retry window starts at sendAt.
func TestSweepThirtyDaysAhead(t *testing.T) {
	f := setup(t)
	ctx := context.Background()
	t0 := f.c.now()
	sendAt := t0.Add(30*24*time.Hour + 17*time.Second + 250*time.Millisecond)
	f.schedule(t, "far", sendAt, "bulk")
	// Hourly sweeps for 30 days: 14 days (SQS's longest retention) pass
	// twice over; nothing is handed off early.
	for at := t0; at.Before(sendAt.Add(-schedule.Lookahead - time.Hour)); at = at.Add(time.Hour) {
		f.c.set(at)
		if r := f.sweep(t); r.Due != 0 || len(f.q.take()) != 0 {
			t.Fatalf("at %v (sendAt %v): handed off %+v", at, sendAt, r)
		}
	}
	// Then every minute, as the rule runs.
	var got []sent
	for at := sendAt.Add(-time.Hour).Truncate(time.Minute); len(got) == 0 && at.Before(sendAt.Add(time.Hour)); at = at.Add(schedule.Period) {
		f.c.set(at)
		f.sweep(t)
		got = f.q.take()
		if len(got) > 0 && at.Before(sendAt.Add(-schedule.Lookahead)) {
			t.Fatalf("handed off at %v, more than %v before %v", at, schedule.Lookahead, sendAt)
		}
	}
	if len(got) != 1 || got[0].Queue != "bulk" || got[0].Body != `{"id":"far"}` {
		t.Fatalf("sends = %+v", got)
	}
	if v := got[0].Visible; v.Before(sendAt) || v.After(sendAt.Add(time.Second)) {
		t.Fatalf("visible at %v; want at sendAt %v (to the second)", v, sendAt)
	}
	f.c.set(got[0].Visible)
	ok, m, err := f.st.Claim(ctx, "far", store.Claim{Owner: "s", Lease: f.c.now().Add(time.Minute), First: f.c.now()})
	if err != nil || !ok || !m.First.Equal(sendAt) {
		t.Fatalf("Claim of the due body = %v, %+v, %v", ok, m, err)
	}
	// Later sweeps find nothing: one hand-off.
	f.c.set(f.c.now().Add(time.Hour))
	if r := f.sweep(t); r.Due != 0 || len(f.q.take()) != 0 {
		t.Fatalf("swept again: %+v", r)
	}
}

// TestSweepWithinAMinute: many requests with sendAt spread over ten
// minutes, sweeps whose start jitters by up to 40 s: each body is visible
// on its queue at its sendAt (never before, at most a second after), and
// handed off once.
func TestSweepWithinAMinute(t *testing.T) {
	f := setup(t)
	rng := rand.New(rand.NewPCG(1, 2))
	t0 := f.c.now()
	want := map[string]time.Time{}
	for i := range 300 {
		id := fmt.Sprint("m", i)
		want[id] = t0.Add(time.Duration(rng.Int64N(int64(10 * time.Minute))))
		f.schedule(t, id, want[id], "")
	}
	seen := map[string]int{}
	for tick := t0.Add(-time.Minute); tick.Before(t0.Add(15 * time.Minute)); tick = tick.Add(schedule.Period) {
		f.c.set(tick.Add(time.Duration(rng.Int64N(int64(40 * time.Second)))))
		f.sweep(t)
		for _, s := range f.q.take() {
			id := s.Body[7 : len(s.Body)-2]
			seen[id]++
			if s.Visible.Before(want[id]) || s.Visible.After(want[id].Add(time.Second)) {
				t.Errorf("%s: visible at %v, sendAt %v", id, s.Visible, want[id])
			}
		}
	}
	for id := range want {
		if seen[id] != 1 {
			t.Errorf("%s handed off %d times", id, seen[id])
		}
	}
}

// TestSweepConcurrentAndStale: two sweepers at once, and a stale index
// listing entries already handed off, send each body once.
func TestSweepConcurrentAndStale(t *testing.T) {
	f := setup(t)
	t0 := f.c.now()
	for i := range 100 {
		f.schedule(t, fmt.Sprint("c", i), t0, "")
	}
	stale := f.idx.snapshot(context.Background())
	var wg sync.WaitGroup
	reports := make([]schedule.Report, 3)
	for i := range reports {
		wg.Add(1)
		go func() { defer wg.Done(); reports[i], _ = f.sw.Sweep(context.Background()) }()
	}
	wg.Wait()
	if n := len(f.q.take()); n != 100 {
		t.Fatalf("%d sends for 100 due requests (reports %+v)", n, reports)
	}
	f.idx.mu.Lock()
	f.idx.stale = stale
	f.idx.mu.Unlock()
	r := f.sweep(t)
	if n := len(f.q.take()); n != 0 || r.Lost != 100 {
		t.Fatalf("stale index: %d sends, report %+v", n, r)
	}
}

// TestSweepCrashes: a crash between any two steps of a hand-off loses
// nothing, and the sender's claim makes a repeated body harmless.
func TestSweepCrashes(t *testing.T) {
	ctx := context.Background()
	t.Run("SendMessage fails", func(t *testing.T) {
		f := setup(t)
		f.schedule(t, "a", f.c.now(), "")
		f.q.fail = errors.New("throttled")
		if r := f.sweep(t); r.Failed != 1 {
			t.Fatalf("report %+v", r)
		}
		f.q.fail = nil
		if r := f.sweep(t); r.HandedOff != 0 { // claimed by the failed sweep until its lease ends
			t.Fatalf("re-handed before the lease ended: %+v", r)
		}
		f.c.set(f.c.now().Add(schedule.ClaimLease + time.Second))
		if r := f.sweep(t); r.HandedOff != 1 || len(f.q.take()) != 1 {
			t.Fatalf("after the lease: %+v", r)
		}
	})
	t.Run("after the claim", func(t *testing.T) {
		f := setup(t)
		f.schedule(t, "b", f.c.now(), "")
		due, _ := f.st.Due(ctx, f.idx, f.c.now(), 10)
		if ok, _, _ := f.st.ClaimDue(ctx, "b", due[0].Due, schedule.Lookahead+schedule.ClaimLease); !ok { // and the sweeper died
			t.Fatal("ClaimDue")
		}
		f.c.set(f.c.now().Add(schedule.ClaimLease + time.Second))
		if r := f.sweep(t); r.HandedOff != 1 {
			t.Fatalf("report %+v", r)
		}
	})
	t.Run("after SendMessage", func(t *testing.T) {
		f := setup(t)
		sendAt := f.c.now()
		f.schedule(t, "c", sendAt, "")
		crashing := f.sweeper(failUnschedule{f.st})
		if r, _ := crashing.Sweep(ctx); r.Failed != 1 {
			t.Fatalf("report %+v", r)
		}
		first := f.q.take()
		f.c.set(f.c.now().Add(schedule.ClaimLease + time.Second))
		f.sweep(t) // sends the body once more and ends the wait
		bodies := append(first, f.q.take()...)
		if len(bodies) != 2 {
			t.Fatalf("%d bodies", len(bodies))
		}
		// Both deliveries reach the sender; one claim wins.
		claims := 0
		for i := range bodies {
			ok, _, err := f.st.Claim(ctx, "c", store.Claim{Owner: fmt.Sprint("d", i), Lease: f.c.now().Add(time.Minute), InDoubt: time.Minute})
			if err != nil {
				t.Fatal(err)
			}
			if ok {
				claims++
			}
		}
		if claims != 1 {
			t.Fatalf("%d claims of one scheduled request", claims)
		}
	})
	t.Run("sender gets the body of a record still scheduled", func(t *testing.T) {
		// The first sweeper's body arrives before anything ended the wait:
		// the sender ends it (Unschedule at now) and claims.
		f := setup(t)
		sendAt := f.c.now()
		f.schedule(t, "d", sendAt, "")
		crashing := f.sweeper(failUnschedule{f.st})
		crashing.Sweep(ctx)
		if ok, m, _ := f.st.Claim(ctx, "d", store.Claim{Owner: "s", Lease: f.c.now().Add(time.Minute)}); ok || m.State != store.StateScheduled {
			t.Fatalf("Claim = %v, %+v", ok, m)
		}
		if applied, _, err := f.st.Unschedule(ctx, "d", f.c.now()); !applied || err != nil {
			t.Fatalf("Unschedule by the sender = %v, %v", applied, err)
		}
		if ok, _, _ := f.st.Claim(ctx, "d", store.Claim{Owner: "s", Lease: f.c.now().Add(time.Minute)}); !ok {
			t.Fatal("not claimed after Unschedule")
		}
		f.c.set(f.c.now().Add(schedule.ClaimLease + time.Second))
		if r := f.sweep(t); r.Due != 0 { // the index entry went with the wait
			t.Fatalf("swept again: %+v", r)
		}
	})
}

// TestSweepCanceled: a canceled schedule is never handed off.
func TestSweepCanceled(t *testing.T) {
	f := setup(t)
	ctx := context.Background()
	sendAt := f.c.now().Add(10 * time.Minute)
	f.schedule(t, "x", sendAt, "")
	if r, err := f.st.Cancel(ctx, "x", "cancel", f.c.now().Add(time.Minute)); err != nil || !r.Won {
		t.Fatalf("Cancel = %+v, %v", r, err)
	}
	for at := f.c.now(); at.Before(sendAt.Add(time.Hour)); at = at.Add(time.Minute) {
		f.c.set(at)
		f.sweep(t)
	}
	if got := f.q.take(); len(got) != 0 {
		t.Fatalf("a canceled schedule was sent: %+v", got)
	}
}

// TestSweepLargeBurst: more due requests than one index page, crowded in
// one minute: one sweep hands them all off, each once.
func TestSweepLargeBurst(t *testing.T) {
	f := setup(t)
	for i := range 1300 {
		f.schedule(t, fmt.Sprint("b", i), f.c.now(), "")
	}
	r := f.sweep(t)
	sent := f.q.take()
	seen := map[string]bool{}
	for _, s := range sent {
		seen[s.Body] = true
	}
	if r.HandedOff != 1300 || len(sent) != 1300 || len(seen) != 1300 {
		t.Fatalf("report %+v, %d sends of %d bodies", r, len(sent), len(seen))
	}
}
