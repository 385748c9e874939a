// Package throttle shares the Skycore account's throughput
// (SKYCORE_RATE_LIMIT, docs/configuration.md) between every sender
// instance and the two lanes (docs/request.md): transactional requests
// take it first, bulk ones only what they leave.
//
// The design is a schedule of call slots kept in one DynamoDB item
// (store.ThrottleKey): tatUs is the next free slot. An instance leases n
// consecutive slots, 1/rate apart, with one conditional UpdateItem, so a
// write serves up to MaxLease calls. Each slot belongs to one instance and
// is usable only at its time (within Grace): slots are never handed back,
// never moved, never used late. So the cap holds by construction, whoever
// races and whoever dies: a dead instance's slots simply pass unused (the
// price is a little throughput, never an excess), and nothing needs to be
// reclaimed. An idle bucket restarts from now (no saved-up burst).
//
// Lanes: a transactional lease may book slots up to Ahead into the future,
// a bulk lease only while the schedule reaches at most BulkAhead ahead. So
// transactional demand at the account's rate pushes the schedule past
// BulkAhead and bulk gets nothing, and a transactional request waits at
// most BulkAhead plus one bulk lease (LeaseSpan) behind any bulk backlog,
// however long it is. Within an instance, a transactional waiter takes a leased slot
// before any bulk waiter.
//
// E113 (Penalize) cuts the shared rate multiplicatively, at most once per
// Cooldown for the whole account (a conditional write on cutMs); it then
// recovers additively, computed from the cut's time, so recovery costs no
// write. Every lease returns the item, so each instance sees the cut at its
// next lease.
package throttle

import (
	"context"
	"errors"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/mmsgate/mmsgate/pkg/apperr"
	"github.com/mmsgate/mmsgate/pkg/store"
)

// Lane is a request's priority: the queue it came from.
type Lane int

const (
	Transactional Lane = iota // SEND_QUEUE_URL
	Bulk                      // BULK_SEND_QUEUE_URL
)

func (l Lane) String() string { return [...]string{"transactional", "bulk"}[l] }

// db is what the limiter calls: one conditional UpdateItem per lease or cut.
type db interface {
	UpdateItem(ctx context.Context, in *dynamodb.UpdateItemInput, opts ...func(*dynamodb.Options)) (*dynamodb.UpdateItemOutput, error)
}

// Clock is the limiter's time; tests give it a simulated one.
type Clock interface {
	Now() time.Time
	After(d time.Duration) <-chan time.Time
}

type realClock struct{}

func (realClock) Now() time.Time                         { return time.Now() }
func (realClock) After(d time.Duration) <-chan time.Time { return time.After(d) }

// Options tune the limiter; zero values take the defaults.
type Options struct {
	// Limit is the account's calls per second (SKYCORE_RATE_LIMIT).
	Limit float64
	// Target is the share of Limit the schedule uses (0.96). A slot may be
	// used up to Grace late, so the schedule keeps at most Limit slots in
	// any second plus Grace: Target is at most 1/(1 + Grace), 0.98 for
	// the 20 ms default (a higher one is lowered to that). The rest of
	// the margin is for network jitter: at 0.98 the bench drew 2-5 times
	// the E113 answers, each cut costing more than the 2 % gained and a
	// refused transactional request a back-off (BENCHMARKS.md).
	Target float64
	// Grace is how late a slot may still be used (20 ms); later, it is
	// forfeited and the waiter takes another.
	Grace time.Duration
	// Ahead is how far ahead a transactional lease may book (2 s);
	// BulkAhead how far ahead the schedule may already reach for a bulk
	// lease to be granted (250 ms).
	Ahead, BulkAhead time.Duration
	// MaxLease is the most slots one write leases (16), and LeaseSpan the
	// longest stretch of schedule it may cover (250 ms; at least one
	// slot): at a low rate a lease of 16 would book seconds, which a
	// transactional request behind a bulk lease would wait for.
	MaxLease  int
	LeaseSpan time.Duration
	// Decrease multiplies the rate on E113 (0.7); Recover is the rate
	// regained per second after a cut, as a share of the target rate
	// (0.1: full recovery from a 0.7 cut in 3 s); MinShare is the floor
	// (0.05); Cooldown is the least time between two cuts (1 s).
	Decrease, Recover, MinShare float64
	Cooldown                    time.Duration
	// MinCall is the least time a call needs before the caller's deadline
	// (1 s, as the sender's): a slot later than that is not taken.
	MinCall time.Duration
	Clock   Clock
}

func (o *Options) defaults() {
	def := func(v *float64, d float64) {
		if *v <= 0 {
			*v = d
		}
	}
	defd := func(v *time.Duration, d time.Duration) {
		if *v <= 0 {
			*v = d
		}
	}
	def(&o.Target, 0.96)
	def(&o.Decrease, 0.7)
	def(&o.Recover, 0.1)
	def(&o.MinShare, 0.05)
	defd(&o.Grace, 20*time.Millisecond)
	defd(&o.Ahead, 2*time.Second)
	defd(&o.BulkAhead, 250*time.Millisecond)
	defd(&o.Cooldown, time.Second)
	defd(&o.LeaseSpan, 250*time.Millisecond)
	defd(&o.MinCall, time.Second)
	// The cap: Limit slots span at least one second plus Grace.
	o.Target = min(o.Target, 1/(1+o.Grace.Seconds()))
	if o.MaxLease <= 0 {
		o.MaxLease = 16
	}
	if o.Clock == nil {
		o.Clock = realClock{}
	}
}

// Limiter is one instance's share of the account's throughput. It is safe
// for concurrent use; build one per process.
type Limiter struct {
	db    db
	table string
	o     Options

	mu      sync.Mutex
	slots   []time.Time // leased, not yet taken, in order
	leasing bool
	changed chan struct{} // closed when slots or leasing change
	waiting [2]int
	retryAt [2]time.Time // per lane: the schedule was too far ahead until then
	view    view
	stats   Stats
	lead    time.Duration // a lease's write round trip, as last measured
}

// view is this instance's copy of the shared item, as of its last write.
type view struct {
	tat   time.Time
	floor float64 // 0: never cut
	cut   time.Time
}

// Stats count what one limiter did (for logs, metrics and the bench).
// Where the target rate goes: Slots leased, of which Forfeited passed
// unused; Gap, schedule time no instance leased while callers came (the
// schedule ran dry and this instance restarted it); and the E113 Cuts.
type Stats struct {
	Leases, Slots, Granted, Forfeited, Contended, Cuts int
	Penalties                                          int // E113 answers reported (Penalize)
	// Gap is the schedule time that ran dry before this instance's
	// leases restarted it, counting only gaps up to MaxGap: a longer one
	// is no demand, not lost throughput.
	Gap time.Duration
}

// MaxGap is the longest pause of the schedule that Stats.Gap counts.
const MaxGap = time.Second

// New returns a limiter over the messages table; o.Limit must be positive.
func New(client db, table string, o Options) *Limiter {
	o.defaults()
	return &Limiter{db: client, table: table, o: o, changed: make(chan struct{})}
}

// Stats returns the counts so far.
func (l *Limiter) Stats() Stats {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.stats
}

// Rate is the shared rate as this instance last saw it, at now.
func (l *Limiter) Rate() float64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.rate(l.o.Clock.Now())
}

func (l *Limiter) rate(now time.Time) float64 {
	top := l.o.Limit * l.o.Target
	if l.view.floor <= 0 {
		return top
	}
	r := l.view.floor + top*l.o.Recover*max(0, now.Sub(l.view.cut).Seconds())
	return min(top, max(r, l.o.Limit*l.o.MinShare))
}

// ErrNoSlot is what Wait returns when no slot comes before the caller's
// deadline (less MinCall): nothing was sent, the request is retried.
var ErrNoSlot = errors.New("no Skycore call slot before the deadline")

func noSlot(err error) error {
	return &apperr.Error{Code: apperr.CodeTimeout, Class: apperr.Retry, Op: "throttle.Wait",
		Message: "no slot of the account's Skycore throughput before the deadline; not sent", Err: err}
}

// Wait returns when this instance may make one Skycore call for lane: at
// its slot's time. A slot overslept past Grace is forfeited and another
// taken. The error (a Retry-class apperr.Error, TIMEOUT when no slot fits
// before ctx's deadline less MinCall, UNAVAILABLE when DynamoDB fails)
// means: do not call.
func (l *Limiter) Wait(ctx context.Context, lane Lane) error {
	for {
		s, err := l.Reserve(ctx, lane)
		if err != nil {
			return err
		}
		if d := s.Sub(l.o.Clock.Now()); d > 0 {
			select {
			case <-l.o.Clock.After(d):
			case <-ctx.Done():
				return noSlot(ctx.Err())
			}
		}
		if l.o.Clock.Now().Sub(s) <= l.o.Grace {
			return nil
		}
		l.mu.Lock()
		l.stats.Forfeited++
		l.mu.Unlock()
	}
}

// Reserve takes the next slot for lane, leasing when the instance has none,
// and returns its time without waiting for it: the caller must call at
// that time, at most Grace later, or not at all.
func (l *Limiter) Reserve(ctx context.Context, lane Lane) (time.Time, error) {
	latest, hasDL := time.Time{}, false
	if dl, ok := ctx.Deadline(); ok {
		latest, hasDL = dl.Add(-l.o.MinCall), true
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	l.waiting[lane]++
	defer func() { l.waiting[lane]-- }()
	for {
		if err := ctx.Err(); err != nil {
			return time.Time{}, noSlot(err)
		}
		now := l.o.Clock.Now()
		l.prune(now)
		if len(l.slots) > 0 && (lane == Transactional || l.waiting[Transactional] == 0) {
			s := l.slots[0]
			if hasDL && s.After(latest) {
				return time.Time{}, noSlot(ErrNoSlot) // the slot stays for a caller with more time
			}
			l.slots = l.slots[1:]
			l.stats.Granted++
			l.broadcast() // a bulk waiter held back by this one may go on
			return s, nil
		}
		lease := Bulk
		if l.waiting[Transactional] > 0 {
			lease = Transactional
		}
		// Lease for the waiters the pool does not cover (the ones ahead of
		// a bulk waiter count: they take the pool's slots first).
		need := l.waiting[lease] - len(l.slots)
		if !l.leasing && need > 0 && !now.Before(l.retryAt[lease]) {
			l.leasing = true
			n := min(need, l.o.MaxLease, max(1, int(l.rate(now)*l.o.LeaseSpan.Seconds())))
			l.mu.Unlock()
			got, retryAt, err := l.lease(ctx, lease, n)
			l.mu.Lock()
			l.leasing = false
			l.slots = append(l.slots, got...)
			slices.SortFunc(l.slots, func(a, b time.Time) int { return a.Compare(b) })
			if !retryAt.IsZero() {
				l.retryAt[lease] = retryAt
			}
			l.broadcast()
			if err != nil {
				return time.Time{}, err
			}
			continue
		}
		// Someone is leasing, or the schedule is too far ahead for this
		// lane until retryAt: wait for either to change.
		d := time.Second
		if !l.leasing && need > 0 {
			d = l.retryAt[lease].Sub(now)
			if hasDL && l.retryAt[lease].After(latest) {
				return time.Time{}, noSlot(ErrNoSlot)
			}
		}
		wake := l.changed
		l.mu.Unlock()
		select {
		case <-wake:
		case <-l.o.Clock.After(d):
		case <-ctx.Done():
		}
		l.mu.Lock()
	}
}

// prune drops the slots whose time has passed beyond Grace: forfeited.
func (l *Limiter) prune(now time.Time) {
	i := 0
	for i < len(l.slots) && now.Sub(l.slots[i]) > l.o.Grace {
		i++
	}
	l.stats.Forfeited += i
	l.slots = l.slots[i:]
}

func (l *Limiter) broadcast() {
	close(l.changed)
	l.changed = make(chan struct{})
}

// lease books n slots for lane in the shared schedule. It returns the
// slots, or when the schedule is too far ahead for lane, the time to try
// again. Two forms, each one conditional write: the schedule is idle (tat
// before soon: start at soon), or it is running (append after tat, if tat
// is within lane's horizon). soon is now plus the write's own round trip
// (as last measured, at most maxLead): slots that would pass before the
// answer comes are not booked, only to be forfeited. The form is chosen
// from the last known tat; a failed condition returns the item, which
// picks the other form.
func (l *Limiter) lease(ctx context.Context, lane Lane, n int) ([]time.Time, time.Time, error) {
	l.mu.Lock()
	now := l.o.Clock.Now()
	step := time.Duration(float64(time.Second) / l.rate(now))
	idle := l.view.tat.Before(now.Add(l.lead))
	l.mu.Unlock()
	span := time.Duration(n) * step
	ahead := l.o.Ahead
	if lane == Bulk {
		ahead = l.o.BulkAhead
	}
	for try := 0; try < 3; try++ {
		l.mu.Lock()
		now = l.o.Clock.Now() // again after a lost race: time went on
		soon := now.Add(l.lead)
		l.mu.Unlock()
		in := &dynamodb.UpdateItemInput{
			TableName: aws.String(l.table), Key: store.ThrottleItemKey(),
			ExpressionAttributeNames:            map[string]string{"#tat": "tatUs"},
			ReturnValues:                        types.ReturnValueAllNew,
			ReturnValuesOnConditionCheckFailure: types.ReturnValuesOnConditionCheckFailureAllOld,
		}
		if idle {
			// The old item tells how long the schedule ran dry (Gap);
			// the lease itself starts at soon, never before the old tat.
			in.ReturnValues = types.ReturnValueAllOld
			in.UpdateExpression = aws.String("SET #tat = :end")
			in.ConditionExpression = aws.String("attribute_not_exists(#tat) OR #tat < :soon")
			in.ExpressionAttributeValues = map[string]types.AttributeValue{":end": us(soon.Add(span)), ":soon": us(soon)}
		} else {
			in.UpdateExpression = aws.String("SET #tat = #tat + :span")
			in.ConditionExpression = aws.String("#tat >= :soon AND #tat <= :lim")
			in.ExpressionAttributeValues = map[string]types.AttributeValue{":span": num(span.Microseconds()), ":soon": us(soon), ":lim": us(now.Add(ahead))}
		}
		sent := l.o.Clock.Now()
		out, err := l.db.UpdateItem(ctx, in)
		if err == nil || errors.As(err, new(*types.ConditionalCheckFailedException)) {
			l.measure(l.o.Clock.Now().Sub(sent))
		}
		var ccf *types.ConditionalCheckFailedException
		switch {
		case err == nil:
			v := decode(out.Attributes)
			var gap time.Duration
			if idle {
				if !v.tat.IsZero() {
					gap = max(0, soon.Sub(v.tat))
				}
				v.tat = soon.Add(span)
			}
			start := v.tat.Add(-span)
			l.mu.Lock()
			l.view = v
			l.stats.Leases++
			l.stats.Slots += n
			if gap <= MaxGap {
				l.stats.Gap += gap
			}
			l.mu.Unlock()
			slots := make([]time.Time, n)
			for i := range slots {
				slots[i] = start.Add(time.Duration(i) * step)
			}
			return slots, time.Time{}, nil
		case errors.As(err, &ccf):
			l.mu.Lock()
			l.stats.Contended++
			l.mu.Unlock()
			if ccf.Item == nil { // a backend that does not return it: try the other form
				idle = !idle
				continue
			}
			v := decode(ccf.Item)
			l.mu.Lock()
			l.view = v
			l.mu.Unlock()
			switch {
			case v.tat.Before(soon):
				idle = true
			case !v.tat.After(now.Add(ahead)):
				idle = false
			default:
				return nil, v.tat.Add(-ahead), nil
			}
		default:
			return nil, time.Time{}, &apperr.Error{Code: apperr.CodeUnavailable, Class: apperr.Retry, Op: "throttle.lease",
				Message: "cannot lease Skycore call slots; not sent", Err: err}
		}
	}
	// Lost three races in a row: let the others go first for a moment.
	return nil, now.Add(step), nil
}

// maxLead bounds how far ahead of now a lease starts (lead).
const maxLead = 250 * time.Millisecond

// measure folds one write's round trip into lead (a moving average, so
// that one slow write does not push the schedule out).
func (l *Limiter) measure(d time.Duration) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.lead == 0 {
		l.lead = min(maxLead, d)
		return
	}
	l.lead = min(maxLead, (3*l.lead+d)/4)
}

// Penalize reports an E113: the account's throughput was exceeded. The
// shared rate is cut to Decrease times what it was, unless another
// instance cut it within Cooldown (one E113 burst, one cut), and this
// instance's leased slots are dropped. It returns an error only when
// DynamoDB fails; the caller goes on either way.
func (l *Limiter) Penalize(ctx context.Context) error {
	l.mu.Lock()
	now := l.o.Clock.Now()
	floor := max(l.rate(now)*l.o.Decrease, l.o.Limit*l.o.MinShare)
	l.stats.Penalties++
	l.stats.Forfeited += len(l.slots)
	l.slots = nil
	l.mu.Unlock()
	out, err := l.db.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName: aws.String(l.table), Key: store.ThrottleItemKey(),
		UpdateExpression:         aws.String("SET #floor = :floor, #cut = :now"),
		ConditionExpression:      aws.String("attribute_not_exists(#cut) OR #cut < :cool"),
		ExpressionAttributeNames: map[string]string{"#floor": "floor", "#cut": "cutMs"},
		ExpressionAttributeValues: map[string]types.AttributeValue{
			":floor": &types.AttributeValueMemberN{Value: strconv.FormatFloat(floor, 'f', 3, 64)},
			":now":   num(now.UnixMilli()), ":cool": num(now.Add(-l.o.Cooldown).UnixMilli()),
		},
		ReturnValues:                        types.ReturnValueAllNew,
		ReturnValuesOnConditionCheckFailure: types.ReturnValuesOnConditionCheckFailureAllOld,
	})
	var ccf *types.ConditionalCheckFailedException
	switch {
	case err == nil:
		l.mu.Lock()
		l.view = decode(out.Attributes)
		l.stats.Cuts++
		l.mu.Unlock()
		return nil
	case errors.As(err, &ccf):
		if ccf.Item != nil {
			l.mu.Lock()
			l.view = decode(ccf.Item)
			l.mu.Unlock()
		}
		return nil
	default:
		return &apperr.Error{Code: apperr.CodeUnavailable, Class: apperr.Retry, Op: "throttle.Penalize",
			Message: "cannot record the E113 cut", Err: err}
	}
}

func num(v int64) types.AttributeValue {
	return &types.AttributeValueMemberN{Value: strconv.FormatInt(v, 10)}
}

func us(t time.Time) types.AttributeValue { return num(t.UnixMicro()) }

func decode(item map[string]types.AttributeValue) view {
	n := func(k string) float64 {
		if v, ok := item[k].(*types.AttributeValueMemberN); ok {
			f, _ := strconv.ParseFloat(v.Value, 64)
			return f
		}
		return 0
	}
	var v view
	if t := n("tatUs"); t > 0 {
		v.tat = time.UnixMicro(int64(t))
	}
	if c := n("cutMs"); c > 0 {
		v.cut = time.UnixMilli(int64(c))
		v.floor = n("floor")
	}
	return v
}
