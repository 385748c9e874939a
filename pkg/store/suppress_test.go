package store_test

import (
	"context"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/mmsgate/mmsgate/internal/localenv"
	"github.com/mmsgate/mmsgate/pkg/store"
)

// tclock is a settable clock shared by a store and its test.
type tclock struct {
	mu sync.Mutex
	t  time.Time
}

func supClock(st *store.Store) *tclock {
	c := &tclock{t: time.Date(2026, 11, 26, 9, 0, 0, 0, time.UTC)}
	st.SetClock(c.now)
	return c
}
func (c *tclock) now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *tclock) add(d time.Duration) time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
	return c.t
}

const (
	num   = "17743199144"
	code  = "60856"
	code2 = "70000"
)

// suppressedFor is SuppressedFor that fails the test on an error.
func suppressedFor(t *testing.T, st *store.Store, to, from, campaign string) *store.Suppression {
	t.Helper()
	sup, err := st.SuppressedFor(context.Background(), to, from, campaign)
	if err != nil {
		t.Fatal(err)
	}
	return sup
}

func TestSuppressionLength(t *testing.T) {
	for _, b := range backends(t) {
		t.Run(b.name, func(t *testing.T) {
			ctx := context.Background()
			clk := supClock(b.st)
			if err := b.st.Suppress(ctx, "15550000110", "E110", "order-110", 72*time.Hour); err != nil {
				t.Fatal(err)
			}
			if err := b.st.Suppress(ctx, "15550000114", "E114", "order-114", 72*time.Hour); err != nil {
				t.Fatal(err)
			}
			clk.add(71 * time.Hour)
			if sup := suppressedFor(t, b.st, "15550000110", code, ""); sup == nil || sup.Code != "E110" || sup.Source != "E110" || sup.Until.IsZero() {
				t.Errorf("E110 within SUPPRESS_TTL = %+v", sup)
			}
			clk.add(2 * time.Hour)
			if sup := suppressedFor(t, b.st, "15550000110", code, ""); sup != nil {
				t.Errorf("E110 after SUPPRESS_TTL = %+v; want none", sup)
			}
			clk.add(365 * 24 * time.Hour)
			sup := suppressedFor(t, b.st, "15550000114", code, "")
			if sup == nil || sup.Code != "E114" || sup.Source != "E114" || sup.ID != "order-114" || !sup.Until.IsZero() {
				t.Fatalf("E114 a year later = %+v; want live until lifted", sup)
			}
			// A later, shorter refusal does not shorten it.
			if err := b.st.Suppress(ctx, "15550000114", "E110", "order-x", time.Hour); err != nil {
				t.Fatal(err)
			}
			clk.add(2 * time.Hour)
			if sup := suppressedFor(t, b.st, "15550000114", "", ""); sup == nil || sup.Code != "E114" {
				t.Errorf("E114 after an E110 = %+v; want E114 still", sup)
			}
			// Its item has no TTL while live; a lift gives it one.
			if it := rawSup(t, b.db, "15550000114"); it["exp"] != nil || it["untilMs"] != nil {
				t.Errorf("live E114 item has exp or untilMs: %v", it)
			}
			if ok, err := b.st.Lift(ctx, "15550000114"); !ok || err != nil {
				t.Fatalf("Lift = %v, %v", ok, err)
			}
			if it := rawSup(t, b.db, "15550000114"); it["exp"] == nil {
				t.Error("lifted item has no exp")
			}
			if sup := suppressedFor(t, b.st, "15550000114", "", ""); sup != nil {
				t.Errorf("after Lift = %+v", sup)
			}
			if ok, err := b.st.Lift(ctx, "15550000114"); ok || err != nil {
				t.Errorf("Lift again = %v, %v; want false", ok, err)
			}
			// Once lifted, a new refusal suppresses again.
			if err := b.st.Suppress(ctx, "15550000114", "E114", "order-again", 72*time.Hour); err != nil {
				t.Fatal(err)
			}
			if sup := suppressedFor(t, b.st, "15550000114", "", ""); sup == nil || sup.ID != "order-again" {
				t.Errorf("E114 after a lift = %+v", sup)
			}
		})
	}
}

func rawSup(t *testing.T, db dynamo, key string) map[string]types.AttributeValue {
	t.Helper()
	out, err := db.GetItem(context.Background(), &dynamodb.GetItemInput{TableName: aws.String(localenv.Table),
		Key: map[string]types.AttributeValue{"pk": &types.AttributeValueMemberS{Value: "sup#" + key}}, ConsistentRead: aws.Bool(true)})
	if err != nil {
		t.Fatal(err)
	}
	return out.Item
}

func TestOptOutScopedToTheCode(t *testing.T) {
	for _, b := range backends(t) {
		t.Run(b.name, func(t *testing.T) {
			ctx := context.Background()
			clk := supClock(b.st)
			applied, err := b.st.OptOut(ctx, num, code, store.Word{Keyword: "STOP", MessageID: "tx-1", At: clk.now()})
			if !applied || err != nil {
				t.Fatalf("OptOut = %v, %v", applied, err)
			}
			clk.add(400 * 24 * time.Hour) // no end
			sup := suppressedFor(t, b.st, num, code, "spring")
			if sup == nil || sup.Code != store.CodeOptedOut || sup.Source != store.SourceKeyword || sup.Reason != "STOP" ||
				sup.ID != "tx-1" || sup.Key != num+"@"+code || !sup.Until.IsZero() {
				t.Fatalf("SuppressedFor(from the code) = %+v", sup)
			}
			if sup := suppressedFor(t, b.st, num, code2, ""); sup != nil {
				t.Errorf("another code's request is suppressed: %+v", sup)
			}
			if sup := suppressedFor(t, b.st, "15550001111", code, ""); sup != nil {
				t.Errorf("another number is suppressed: %+v", sup)
			}
			// The same STOP again (a retried postback) changes nothing.
			if applied, err := b.st.OptOut(ctx, num, code, store.Word{Keyword: "STOP", MessageID: "tx-1", At: clk.now().Add(-400 * 24 * time.Hour)}); !applied || err != nil {
				t.Errorf("same OptOut again = %v, %v", applied, err)
			}
			// START lifts it.
			if applied, err := b.st.OptIn(ctx, num, code, store.Word{Keyword: "START", MessageID: "tx-2", At: clk.now()}); !applied || err != nil {
				t.Fatalf("OptIn = %v, %v", applied, err)
			}
			if sup := suppressedFor(t, b.st, num, code, ""); sup != nil {
				t.Errorf("after START = %+v", sup)
			}
		})
	}
}

// TestWordsApplyInTheOrderWritten: a STOP whose postback is retried after
// the START that followed it does not opt the number out again, and the
// other way round.
func TestWordsApplyInTheOrderWritten(t *testing.T) {
	for _, b := range backends(t) {
		t.Run(b.name, func(t *testing.T) {
			ctx := context.Background()
			clk := supClock(b.st)
			stopAt := clk.now()
			startAt := stopAt.Add(time.Minute)
			if applied, err := b.st.OptIn(ctx, num, code, store.Word{Keyword: "START", MessageID: "tx-2", At: startAt}); !applied || err != nil {
				t.Fatalf("OptIn with nothing to lift = %v, %v (the record is still written)", applied, err)
			}
			if applied, err := b.st.OptOut(ctx, num, code, store.Word{Keyword: "STOP", MessageID: "tx-1", At: stopAt}); applied || err != nil {
				t.Errorf("older STOP after START = %v, %v; want not applied", applied, err)
			}
			if sup := suppressedFor(t, b.st, num, code, ""); sup != nil {
				t.Errorf("older STOP suppressed: %+v", sup)
			}
			// A newer STOP applies; an older START retried after it does not.
			if applied, err := b.st.OptOut(ctx, num, code, store.Word{Keyword: "STOPALL", MessageID: "tx-3", At: startAt.Add(time.Minute)}); !applied || err != nil {
				t.Fatalf("newer STOP = %v, %v", applied, err)
			}
			if applied, err := b.st.OptIn(ctx, num, code, store.Word{Keyword: "START", MessageID: "tx-2", At: startAt}); applied || err != nil {
				t.Errorf("older START after STOP = %v, %v; want not applied", applied, err)
			}
			if sup := suppressedFor(t, b.st, num, code, ""); sup == nil || sup.Reason != "STOPALL" {
				t.Errorf("after the older START = %+v; want the STOPALL", sup)
			}
			// An operator's lift is the latest word: the STOP written before
			// it, retried after, does not bring it back.
			clk.add(time.Hour)
			if ok, err := b.st.Lift(ctx, store.OptOutKey(num, code)); !ok || err != nil {
				t.Fatalf("Lift = %v, %v", ok, err)
			}
			if applied, _ := b.st.OptOut(ctx, num, code, store.Word{Keyword: "STOPALL", MessageID: "tx-3", At: startAt.Add(time.Minute)}); applied {
				t.Error("a STOP written before the lift applied after it")
			}
			// No message time: the time it is recorded.
			clk.add(time.Minute)
			if applied, err := b.st.OptOut(ctx, num, code, store.Word{Keyword: "STOP", MessageID: "tx-4"}); !applied || err != nil {
				t.Errorf("OptOut without a time = %v, %v", applied, err)
			}
		})
	}
}

func TestOptInLiftsAnEarlierE114(t *testing.T) {
	for _, b := range backends(t) {
		t.Run(b.name, func(t *testing.T) {
			ctx := context.Background()
			clk := supClock(b.st)
			// STOP, then a send already in flight is refused E114.
			stop := clk.now()
			if _, err := b.st.OptOut(ctx, num, code, store.Word{Keyword: "STOP", MessageID: "tx-1", At: stop}); err != nil {
				t.Fatal(err)
			}
			clk.add(time.Second)
			if err := b.st.Suppress(ctx, num, "E114", "order-in-flight", 72*time.Hour); err != nil {
				t.Fatal(err)
			}
			if err := b.st.Suppress(ctx, "15550000110", "E110", "order-110", 72*time.Hour); err != nil {
				t.Fatal(err)
			}
			start := clk.add(time.Minute)
			if _, err := b.st.OptIn(ctx, num, code, store.Word{Keyword: "START", MessageID: "tx-2", At: start}); err != nil {
				t.Fatal(err)
			}
			if sup := suppressedFor(t, b.st, num, code, ""); sup != nil {
				t.Errorf("after START, %+v still suppresses", sup)
			}
			// An E114 recorded after the START is not lifted by it.
			clk.add(time.Minute)
			if err := b.st.Suppress(ctx, num, "E114", "order-after", 72*time.Hour); err != nil {
				t.Fatal(err)
			}
			if _, err := b.st.OptIn(ctx, num, code2, store.Word{Keyword: "START", MessageID: "tx-3", At: start}); err != nil {
				t.Fatal(err)
			}
			if sup := suppressedFor(t, b.st, num, code, ""); sup == nil || sup.ID != "order-after" {
				t.Errorf("E114 after the START = %+v; want it live", sup)
			}
			// An opt-in never lifts another kind of refusal.
			clk.add(time.Minute)
			if _, err := b.st.OptIn(ctx, "15550000110", code, store.Word{Keyword: "START", MessageID: "tx-5", At: clk.now()}); err != nil {
				t.Fatal(err)
			}
			if sup := suppressedFor(t, b.st, "15550000110", code, ""); sup == nil || sup.Code != "E110" {
				t.Errorf("E110 after START = %+v; want it live", sup)
			}
		})
	}
}

func TestOperatorEntries(t *testing.T) {
	for _, b := range backends(t) {
		t.Run(b.name, func(t *testing.T) {
			ctx := context.Background()
			clk := supClock(b.st)
			if err := b.st.SuppressByOperator(ctx, num, "", "asked by phone"); err != nil {
				t.Fatal(err)
			}
			if err := b.st.SuppressByOperator(ctx, "15550001111", code, "complaint #12"); err != nil {
				t.Fatal(err)
			}
			if err := b.st.Suppress(ctx, "15550002222", "E110", "order-3", time.Hour); err != nil {
				t.Fatal(err)
			}
			clk.add(30 * 24 * time.Hour)
			for _, from := range []string{code, code2, ""} {
				if sup := suppressedFor(t, b.st, num, from, ""); sup == nil || sup.Code != store.CodeOptedOut || sup.Source != store.SourceOperator || sup.Reason != "asked by phone" {
					t.Errorf("number-wide operator entry, from %q = %+v", from, sup)
				}
			}
			if sup := suppressedFor(t, b.st, "15550001111", code2, ""); sup != nil {
				t.Errorf("operator entry for one code suppresses another: %+v", sup)
			}
			// A keyword cannot overwrite an operator's later action.
			if applied, _ := b.st.OptIn(ctx, "15550001111", code, store.Word{Keyword: "START", At: clk.now().Add(-31 * 24 * time.Hour)}); applied {
				t.Error("a START written before the operator's entry lifted it")
			}
			// An E110 does not replace a live operator entry.
			if err := b.st.Suppress(ctx, num, "E110", "order-9", time.Hour); err != nil {
				t.Fatal(err)
			}
			// The list: live entries only, with source, reason and when.
			db, ok := b.db.(interface {
				Scan(context.Context, *dynamodb.ScanInput, ...func(*dynamodb.Options)) (*dynamodb.ScanOutput, error)
			})
			if !ok {
				t.Skip("no Scan")
			}
			sups, err := b.st.Suppressions(ctx, db)
			if err != nil {
				t.Fatal(err)
			}
			type row struct{ key, code, source, reason string }
			var got []row
			for _, s := range sups {
				got = append(got, row{s.Key, s.Code, s.Source, s.Reason})
				if s.At.IsZero() {
					t.Errorf("%s has no time", s.Key)
				}
			}
			want := []row{{"15550001111@60856", "OPTED_OUT", "operator", "complaint #12"}, {num, "OPTED_OUT", "operator", "asked by phone"}}
			if len(got) != len(want) || got[0] != want[0] || got[1] != want[1] {
				t.Errorf("Suppressions = %+v; want %+v", got, want)
			}
		})
	}
}

// TestLegacySuppressionItem: an entry written before sources were recorded
// reads with its code as source and keeps its end.
func TestLegacySuppressionItem(t *testing.T) {
	b := backends(t)[0]
	supClock(b.st)
	ctx := context.Background()
	until := time.Date(2026, 11, 27, 9, 0, 0, 0, time.UTC)
	_, err := b.db.UpdateItem(ctx, &dynamodb.UpdateItemInput{TableName: aws.String(localenv.Table),
		Key:              map[string]types.AttributeValue{"pk": &types.AttributeValueMemberS{Value: "sup#" + num}},
		UpdateExpression: aws.String("SET code = :c, id = :i, atMs = :a, untilMs = :u"),
		ExpressionAttributeValues: map[string]types.AttributeValue{":c": &types.AttributeValueMemberS{Value: "E114"},
			":i": &types.AttributeValueMemberS{Value: "order-old"}, ":a": &types.AttributeValueMemberN{Value: "1764000000000"},
			":u": &types.AttributeValueMemberN{Value: itoa(until.UnixMilli())}}})
	if err != nil {
		t.Fatal(err)
	}
	sup := suppressedFor(t, b.st, num, code, "")
	if sup == nil || sup.Source != "E114" || !sup.Until.Equal(until) {
		t.Errorf("legacy item = %+v", sup)
	}
}

func itoa(v int64) string { return strconv.FormatInt(v, 10) }

// TestOptOutRacesSends: a check that starts after OptOut returned always
// sees it (the sender checks after its claim, so a request claimed after
// the opt-out is recorded is refused); checks that overlap it may go
// either way.
func TestOptOutRacesSends(t *testing.T) {
	for _, b := range backends(t) {
		t.Run(b.name, func(t *testing.T) {
			ctx := context.Background()
			var recorded atomic.Bool
			var wg sync.WaitGroup
			var missed atomic.Int32
			for i := 0; i < 8; i++ {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for j := 0; j < 25; j++ {
						after := recorded.Load()
						sup, err := b.st.SuppressedFor(ctx, num, code, "")
						if err != nil {
							t.Error(err)
							return
						}
						if after && sup == nil {
							missed.Add(1)
						}
					}
				}()
			}
			if _, err := b.st.OptOut(ctx, num, code, store.Word{Keyword: "STOP", MessageID: "tx-race"}); err != nil {
				t.Fatal(err)
			}
			recorded.Store(true)
			wg.Wait()
			if n := missed.Load(); n > 0 {
				t.Errorf("%d checks that started after the opt-out was recorded did not see it", n)
			}
		})
	}
}

func TestSuppressionExplain(t *testing.T) {
	at := time.Date(2026, 11, 25, 14, 0, 0, 0, time.UTC)
	for _, tt := range []struct {
		sup  store.Suppression
		want string
	}{
		{store.Suppression{Key: num, Code: "E110", Source: "E110", ID: "order-0", At: at, Until: at.Add(72 * time.Hour)},
			"E110: suppressed: Skycore refused 17743199144 with E110 at 2026-11-25T14:00:00Z; no call until 2026-11-28T14:00:00Z"},
		{store.Suppression{Key: num, Code: "E114", Source: "E114", ID: "order-0", At: at},
			"E114: suppressed: Skycore refused 17743199144 with E114 at 2026-11-25T14:00:00Z; no call until it is lifted"},
		{store.Suppression{Key: num + "@" + code, Code: "OPTED_OUT", Source: "keyword", Reason: "STOP", ID: "tx-1", At: at},
			"OPTED_OUT: suppressed: 17743199144 wrote STOP to 60856 at 2026-11-25T14:00:00Z; no call until it opts in again or the entry is lifted"},
		{store.Suppression{Key: num, Code: "OPTED_OUT", Source: "operator", Reason: "asked by phone", At: at},
			"OPTED_OUT: suppressed: 17743199144 was put on the list by an operator at 2026-11-25T14:00:00Z; no call until the entry is lifted"},
	} {
		if got := tt.sup.Explain(); got != tt.want {
			t.Errorf("Explain() =\n%s\nwant\n%s", got, tt.want)
		}
		// The id of what caused the entry (another request, or the
		// person's message) goes to the operator, never into the event.
		if tt.sup.ID != "" && strings.Contains(tt.sup.Explain(), tt.sup.ID) {
			t.Errorf("Explain() names %s: %s", tt.sup.ID, tt.sup.Explain())
		}
	}
}
