package store_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/smithy-go"
	"github.com/google/go-cmp/cmp"

	"github.com/mmsgate/mmsgate/internal/localenv"
	"github.com/mmsgate/mmsgate/internal/memdb"
	"github.com/mmsgate/mmsgate/pkg/apperr"
	"github.com/mmsgate/mmsgate/pkg/store"
)

// clock is a settable time for the store under test.
type clock struct{ t time.Time }

func (c *clock) now() time.Time               { return c.t }
func (c *clock) add(d time.Duration)          { c.t = c.t.Add(d) }
func (c *clock) in(d time.Duration) time.Time { return c.t.Add(d) }

func withClock(t *testing.T) (*store.Store, *clock) {
	t.Helper()
	st := setup(t)
	c := &clock{t: time.Now().Truncate(time.Millisecond)}
	st.SetClock(c.now)
	return st, c
}

func mustClaim(t *testing.T, st *store.Store, id string, c store.Claim) *store.Message {
	t.Helper()
	ok, m, err := st.Claim(context.Background(), id, c)
	if err != nil || !ok {
		t.Fatalf("Claim(%s, %s) = %v, %+v, %v; want claimed", id, c.Owner, ok, m, err)
	}
	return m
}

func TestClaimLifecycle(t *testing.T) {
	st, c := withClock(t)
	ctx := context.Background()
	first := c.in(-time.Hour)
	m := mustClaim(t, st, "m1", store.Claim{Owner: "a", Lease: c.in(time.Minute), First: first, InDoubt: time.Minute})
	if !m.First.Equal(first) || m.Attempts != 1 || m.State != store.StateInProgress {
		t.Fatalf("claimed record = %+v", m)
	}
	if ok, m, _ := st.Claim(ctx, "m1", store.Claim{Owner: "b", Lease: c.in(time.Minute)}); ok || m.State != store.StateInProgress || m.Owner != "a" {
		t.Fatalf("second claim = %v, %+v; want held by a", ok, m)
	}
	if applied, err := st.Release(ctx, "m1", "b", store.Outcome{Code: "E503"}); applied || err != nil { // not the owner: no effect
		t.Fatalf("Release by another = %v, %v", applied, err)
	}
	if ok, _, _ := st.Claim(ctx, "m1", store.Claim{Owner: "b", Lease: c.in(time.Minute)}); ok {
		t.Fatal("a release by someone else freed the claim")
	}
	if applied, err := st.Release(ctx, "m1", "a", store.Outcome{Attempt: 1, Code: "E503"}); !applied || err != nil {
		t.Fatalf("Release by the owner = %v, %v", applied, err)
	}
	// The retry keeps the first enqueue time, whatever the new claim says.
	m = mustClaim(t, st, "m1", store.Claim{Owner: "b", Lease: c.in(time.Minute), First: c.now()})
	if !m.First.Equal(first) || m.Attempts != 2 {
		t.Fatalf("retry claim = %+v; want the first time kept and 2 attempts", m)
	}
	c.add(time.Second)
	won, m, err := st.Accept(ctx, "m1", "b", c.in(time.Minute), store.Outcome{Attempt: 2, TrackingID: "T9", To: "1"})
	if err != nil || !won || m.State != store.StateAccepted || m.PendingEvent != "accepted" {
		t.Fatalf("Accept = %v, %+v, %v", won, m, err)
	}
	// The history: attempt 1 released with E503, attempt 2 accepted.
	var steps []string
	for _, h := range m.History {
		steps = append(steps, fmt.Sprintf("%d:%s:%s:%s", h.Attempt, h.State, h.Code, h.TrackingID))
	}
	if diff := cmp.Diff([]string{"1:RETRY:E503:", "2:ACCEPTED::T9"}, steps); diff != "" {
		t.Errorf("history (-want +got):\n%s", diff)
	}
	ok, m, _ := st.Claim(ctx, "m1", store.Claim{Owner: "c", Lease: c.in(time.Hour)})
	if ok || !m.Final() || m.TrackingID != "T9" || !m.NeedsEvent() {
		t.Fatalf("claim of an accepted id = %v, %+v", ok, m)
	}
	// A second acceptance (a duplicate's, a hand-off's) does not win again.
	if won, m, _ := st.Accept(ctx, "m1", "c", c.in(time.Minute), store.Outcome{TrackingID: "T9"}); won || m.TrackingID != "T9" {
		t.Fatalf("second Accept = %v, %+v; want lost", won, m)
	}
	if won, _, _ := st.Reject(ctx, "m1", "c", c.in(time.Minute), store.Outcome{Code: "E110"}); won {
		t.Fatal("a rejection overwrote an acceptance")
	}
}

func TestDeadClaimantIsInDoubt(t *testing.T) {
	tests := map[string]struct {
		window    time.Duration
		wantDoubt bool
	}{
		"window on: in doubt, not taken over": {window: 15 * time.Minute, wantDoubt: true},
		"window 0: taken over at once":        {window: 0},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			st, c := withClock(t)
			ctx := context.Background()
			lease := c.in(30 * time.Second)
			mustClaim(t, st, "d1", store.Claim{Owner: "dead", Lease: lease, InDoubt: tt.window})
			c.add(time.Minute) // the holder died; its lease ran out
			ok, m, err := st.Claim(ctx, "d1", store.Claim{Owner: "next", Lease: c.in(time.Minute), InDoubt: tt.window})
			if err != nil {
				t.Fatal(err)
			}
			if !tt.wantDoubt {
				if !ok {
					t.Fatalf("Claim = %+v; want taken over", m)
				}
				return
			}
			if ok || m.State != store.StateInDoubt || !m.DoubtUntil.Equal(lease.Add(tt.window)) {
				t.Fatalf("Claim = %v, %+v; want INDOUBT until %v", ok, m, lease.Add(tt.window))
			}
			c.add(tt.window - 2*time.Minute) // still inside the window
			if ok, _, _ := st.Claim(ctx, "d1", store.Claim{Owner: "next", Lease: c.in(time.Minute), InDoubt: tt.window}); ok {
				t.Fatal("claimed inside the doubt window")
			}
			c.add(2 * time.Minute)
			mustClaim(t, st, "d1", store.Claim{Owner: "next", Lease: c.in(time.Minute), InDoubt: tt.window})
		})
	}
}

func TestPostbackReconcilesInDoubt(t *testing.T) {
	st, c := withClock(t)
	ctx := context.Background()
	mustClaim(t, st, "r1", store.Claim{Owner: "s", Lease: c.in(time.Minute), InDoubt: time.Minute})
	if applied, err := st.Doubt(ctx, "r1", "s", c.in(15*time.Minute), store.Outcome{Attempt: 1, Code: "TIMEOUT"}); !applied || err != nil {
		t.Fatalf("Doubt = %v, %v", applied, err)
	}
	won, m, err := st.AcceptByPostback(ctx, "r1", "TX", "postback/1", c.in(30*time.Second))
	if err != nil || !won || m.State != store.StateAccepted || m.TrackingID != "TX" || m.AcceptedBy != "postback" || m.Code != "TIMEOUT" && m.Code != "" {
		t.Fatalf("AcceptByPostback = %v, %+v, %v", won, m, err)
	}
	// The sender's late Success for the same call finds it recorded.
	if won, m, _ := st.Accept(ctx, "r1", "s", c.in(time.Minute), store.Outcome{TrackingID: "TX"}); won || m.TrackingID != "TX" {
		t.Fatalf("sender's Accept = %v, %+v; want lost to the postback", won, m)
	}
	// And nothing claims it again.
	c.add(time.Hour)
	if ok, _, _ := st.Claim(ctx, "r1", store.Claim{Owner: "x", Lease: c.in(time.Minute), InDoubt: time.Minute}); ok {
		t.Fatal("an id accepted by postback was claimed again")
	}
	// A postback for a finished request does not win.
	if won, _, _ := st.AcceptByPostback(ctx, "r1", "TY", "postback/2", c.in(time.Minute)); won {
		t.Fatal("a second postback acceptance won")
	}
	// Nor for an id nobody sent.
	if won, m, err := st.AcceptByPostback(ctx, "nobody", "TZ", "postback/3", c.in(time.Minute)); won || m != nil || err != nil {
		t.Fatalf("AcceptByPostback(nobody) = %v, %+v, %v", won, m, err)
	}
}

func TestPendingEventHasOnePublisher(t *testing.T) {
	st, c := withClock(t)
	ctx := context.Background()
	mustClaim(t, st, "p1", store.Claim{Owner: "rec", Lease: c.in(time.Minute)})
	if won, _, err := st.Expire(ctx, "p1", "rec", c.in(time.Minute), store.Outcome{Code: "E503"}); !won || err != nil {
		t.Fatalf("Expire = %v, %v", won, err)
	}
	if took, _, _ := st.TakeEvent(ctx, "p1", "dup", c.in(time.Minute)); took {
		t.Fatal("a duplicate took the event its recorder holds")
	}
	if took, _, _ := st.TakeEvent(ctx, "p1", "rec", c.in(time.Minute)); !took {
		t.Fatal("the recorder cannot take its own event")
	}
	if err := st.ReleaseEvent(ctx, "p1", "dup"); err != nil { // not the holder: no effect
		t.Fatal(err)
	}
	if took, _, _ := st.TakeEvent(ctx, "p1", "dup", c.in(time.Minute)); took {
		t.Fatal("a release by someone else freed the event")
	}
	if err := st.ReleaseEvent(ctx, "p1", "rec"); err != nil {
		t.Fatal(err)
	}
	took, m, err := st.TakeEvent(ctx, "p1", "dup", c.in(time.Minute))
	if !took || err != nil || m.PendingEvent != "expired" {
		t.Fatalf("TakeEvent after release = %v, %+v, %v", took, m, err)
	}
	if err := st.EventSent(ctx, "p1"); err != nil {
		t.Fatal(err)
	}
	if took, m, _ := st.TakeEvent(ctx, "p1", "late", c.in(time.Minute)); took || m.NeedsEvent() {
		t.Fatalf("TakeEvent after EventSent = %v, %+v", took, m)
	}
	// A holder that died: its hold runs out and another takes over.
	mustClaim(t, st, "p2", store.Claim{Owner: "rec", Lease: c.in(time.Minute)})
	st.Reject(ctx, "p2", "rec", c.in(time.Minute), store.Outcome{Code: "E110"})
	c.add(2 * time.Minute)
	if took, _, _ := st.TakeEvent(ctx, "p2", "dup", c.in(time.Minute)); !took {
		t.Fatal("an expired hold was not taken over")
	}
}

func TestLinkNeverRepoints(t *testing.T) {
	st := setup(t)
	ctx := context.Background()
	if err := st.Link(ctx, "T1", "a", nil); err != nil {
		t.Fatal(err)
	}
	if err := st.Link(ctx, "T1", "a", nil); err != nil {
		t.Fatalf("relinking to the same id = %v", err)
	}
	if err := st.Link(ctx, "T1", "b", nil); !errors.Is(err, store.ErrLinkConflict) {
		t.Fatalf("Link to another id = %v, want ErrLinkConflict", err)
	}
	long := string(make([]byte, store.MaxKeyBytes))
	if err := st.Link(ctx, long, "a", nil); apperr.CodeOf(err) != apperr.CodeMalformed {
		t.Fatalf("Link of an unkeyable tracking id = %v", err)
	}
	if store.Keyable(long) || !store.Keyable("T1") || store.Keyable("") {
		t.Error("Keyable")
	}
}

// TestKeyOf: a keyable tracking id is its own key, "" stays "", an
// unkeyable one gets a stable, keyable surrogate of its own.
func TestKeyOf(t *testing.T) {
	at := strings.Repeat("a", store.MaxKeyBytes-len("trk#"))
	over, other := at+"a", at+"b"
	sum := sha256.Sum256([]byte(over))
	for in, want := range map[string]string{"T1": "T1", "": "", at: at, over: "sha256:" + hex.EncodeToString(sum[:])} {
		if got := store.KeyOf(in); got != want {
			t.Errorf("KeyOf(%.20q) = %.80q, want %.80q", in, got, want)
		}
	}
	if k := store.KeyOf(over); !store.Keyable(k) || k == store.KeyOf(other) {
		t.Errorf("surrogates %q, %q: want keyable and distinct", k, store.KeyOf(other))
	}
	for in, want := range map[string]bool{store.KeyOf(over): true, "T1": false, "": false, at: false,
		"sha256:" + strings.Repeat("0", 63): false, "sha256:" + strings.Repeat("g", 64): false, "SHA256:" + hex.EncodeToString(sum[:]): false} {
		if got := store.IsSurrogate(in); got != want {
			t.Errorf("IsSurrogate(%.80q) = %v, want %v", in, got, want)
		}
	}
}

// failing is a DynamoDB that answers every call with err.
type failing struct{ err error }

func (f failing) UpdateItem(context.Context, *dynamodb.UpdateItemInput, ...func(*dynamodb.Options)) (*dynamodb.UpdateItemOutput, error) {
	return nil, f.err
}

func (f failing) GetItem(context.Context, *dynamodb.GetItemInput, ...func(*dynamodb.Options)) (*dynamodb.GetItemOutput, error) {
	return nil, f.err
}

func TestDynamoDBErrorClasses(t *testing.T) {
	tests := map[string]struct {
		err  error
		want apperr.Class
	}{
		"throttled":        {&smithy.GenericAPIError{Code: "ThrottlingException"}, apperr.Retry},
		"capacity":         {&smithy.GenericAPIError{Code: "ProvisionedThroughputExceededException"}, apperr.Retry},
		"5xx":              {&smithy.GenericAPIError{Code: "InternalServerError", Fault: smithy.FaultServer}, apperr.Retry},
		"network":          {errors.New("connection reset by peer"), apperr.Retry},
		"validation":       {&smithy.GenericAPIError{Code: "ValidationException"}, apperr.Config},
		"access denied":    {&smithy.GenericAPIError{Code: "AccessDeniedException"}, apperr.Config},
		"table is missing": {&smithy.GenericAPIError{Code: "ResourceNotFoundException"}, apperr.Config},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			st := store.New(failing{tt.err}, "t", 0)
			_, _, err := st.Claim(context.Background(), "x", store.Claim{Owner: "o", Lease: time.Now().Add(time.Minute)})
			if got := apperr.ClassOf(err); got != tt.want {
				t.Errorf("Claim error class = %s, want %s (%v)", got, tt.want, err)
			}
			if !errors.Is(err, tt.err) {
				t.Errorf("the cause is lost: %v", err)
			}
		})
	}
}

// TestHistoryIsBounded: however many attempts, the record keeps the last
// HistorySlots of them.
func TestHistoryIsBounded(t *testing.T) {
	st, c := withClock(t)
	ctx := context.Background()
	for i := 1; i <= 3*store.HistorySlots; i++ {
		c.add(time.Second)
		m := mustClaim(t, st, "h1", store.Claim{Owner: "o", Lease: c.in(time.Minute)})
		if _, err := st.Release(ctx, "h1", "o", store.Outcome{Attempt: m.Attempts, Code: fmt.Sprint("E", i)}); err != nil {
			t.Fatal(err)
		}
	}
	m, err := st.Get(ctx, "h1")
	if err != nil {
		t.Fatal(err)
	}
	if len(m.History) != store.HistorySlots || m.History[0].Attempt != 2*store.HistorySlots+1 || m.History[len(m.History)-1].Code != fmt.Sprint("E", 3*store.HistorySlots) {
		t.Errorf("history = %d steps from attempt %d; want the last %d", len(m.History), m.History[0].Attempt, store.HistorySlots)
	}
}

// retriedClaim is DynamoDB as the SDK shows it when a claim's answer is
// lost: the write took effect and the SDK's retry (it retries a closed
// connection by default) meets the write's own condition.
type retriedClaim struct {
	*memdb.DB
	retried int
}

func (r *retriedClaim) UpdateItem(ctx context.Context, in *dynamodb.UpdateItemInput, opts ...func(*dynamodb.Options)) (*dynamodb.UpdateItemOutput, error) {
	out, err := r.DB.UpdateItem(ctx, in, opts...)
	if err != nil || !strings.HasPrefix(aws.ToString(in.ConditionExpression), "attribute_not_exists(#pk)") {
		return out, err
	}
	r.retried++
	return r.DB.UpdateItem(ctx, in, opts...)
}

// A claim whose answer was lost is still ours: the request is sent now,
// not after our lease and the doubt window. A claim that matches it in
// owner or lease alone, not both, is still refused.
func TestClaimWithLostAnswerIsOurs(t *testing.T) {
	ctx := context.Background()
	db := &retriedClaim{DB: memdb.New()}
	if err := store.CreateTable(ctx, db.DB, localenv.Table); err != nil {
		t.Fatal(err)
	}
	st := store.New(db, localenv.Table, 0)
	now := time.Now().Truncate(time.Millisecond)
	st.SetClock(func() time.Time { return now })
	lease := now.Add(40 * time.Second).Add(123 * time.Microsecond) // the Lambda deadline, finer than the table's ms

	ok, m, err := st.Claim(ctx, "lost-1", store.Claim{Owner: "msg-1/inv-1", Lease: lease, InDoubt: 15 * time.Minute})
	if err != nil || !ok || db.retried != 1 {
		t.Fatalf("Claim with a lost answer = %v, %+v, %v (retried %d); want claimed", ok, m, err, db.retried)
	}
	if m.State != store.StateInProgress || m.Attempts != 1 {
		t.Errorf("record %s, attempts %d; want IN_PROGRESS, one attempt", m.State, m.Attempts)
	}
	for name, c := range map[string]store.Claim{
		"another owner, same lease": {Owner: "msg-1/inv-2", Lease: lease, InDoubt: 15 * time.Minute},
		"same owner, another lease": {Owner: "msg-1/inv-1", Lease: lease.Add(time.Second), InDoubt: 15 * time.Minute},
	} {
		t.Run(name, func(t *testing.T) {
			if ok, m, err := st.Claim(ctx, "lost-1", c); err != nil || ok {
				t.Errorf("Claim = %v, %+v, %v; want held by the first", ok, m, err)
			}
		})
	}
}
