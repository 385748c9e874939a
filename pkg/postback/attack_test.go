package postback

// Adversarial review: attacks on the postback function's promises
// (docs/events.md, docs/postback.md). A test marked "FINDING" fails on the code as reviewed
// and is skipped so the suite stays green.

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mmsgate/mmsgate/pkg/apperr"
	"github.com/mmsgate/mmsgate/pkg/store"
)

// lostAnswer is the real store, except that the chosen call is applied by
// DynamoDB but its answer is lost (a timeout after the write): the caller
// gets a transient error, once.
type lostAnswer struct {
	records
	at   string
	once sync.Once
}

func (l *lostAnswer) lose(name string) (lost bool) {
	if name == l.at {
		l.once.Do(func() { lost = true })
	}
	return lost
}

var errLost = &apperr.Error{Code: apperr.CodeUnavailable, Class: apperr.Retry, Op: "store", Message: "timeout after the write"}

func (l *lostAnswer) Postback(ctx context.Context, trackingID, key string, rank int, state, owner string, hold time.Time) (store.Decision, store.Joined, error) {
	d, j, err := l.records.Postback(ctx, trackingID, key, rank, state, owner, hold)
	if err == nil && l.lose("Postback") {
		return 0, store.Joined{}, errLost
	}
	return d, j, err
}

func (l *lostAnswer) AcceptByPostback(ctx context.Context, id, trackingID, owner string, hold time.Time) (bool, *store.Message, error) {
	won, m, err := l.records.AcceptByPostback(ctx, id, trackingID, owner, hold)
	if err == nil && l.lose("AcceptByPostback") {
		return false, nil, errLost
	}
	return won, m, err
}

func (l *lostAnswer) TakeEvent(ctx context.Context, id, owner string, hold time.Time) (bool, *store.Message, error) {
	took, m, err := l.records.TakeEvent(ctx, id, owner, hold)
	if err == nil && l.lose("TakeEvent") {
		return false, nil, errLost
	}
	return took, m, err
}

// TestAttackLostAnswerReleases: docs/postback.md, "an invocation that answers
// 5xx releases whatever it holds: a retry that comes right after succeeds
// as soon as the cause is gone". Here the cause is a DynamoDB answer lost
// after the write took effect (the write gave this invocation the emitter
// slot or the request's pending event). The retry right after must get
// 200 with the events, not wait 30 s for the hold.
func TestAttackLostAnswerReleases(t *testing.T) {
	ctx := context.Background()
	for _, at := range []string{"Postback", "AcceptByPostback", "TakeEvent"} {
		t.Run(at, func(t *testing.T) {
			hs := newHarness(t)
			id := "lost-" + strings.ToLower(at)
			hs.store.Claim(ctx, id, store.Claim{Owner: "sender", Lease: hs.now().Add(time.Minute)})
			want := []string{id + ":accepted:", id + ":sent:N101"}
			if at == "TakeEvent" { // the sender recorded it, its hold is over
				hs.store.Accept(ctx, id, "sender", hs.now().Add(-time.Second), store.Outcome{TrackingID: "T-" + at})
			} else {
				hs.store.Doubt(ctx, id, "sender", hs.now().Add(15*time.Minute), store.Outcome{Code: "TIMEOUT"})
			}
			real := hs.h.d.Store
			hs.h.d.Store = &lostAnswer{records: real, at: at}
			if resp := hs.invoke(t, post(pbXML("N101", "T-"+at, id))); resp.StatusCode < 500 {
				t.Fatalf("status %d, want 5xx", resp.StatusCode)
			}
			hs.at(2 * time.Second) // Skycore, or API Gateway's client, retries right after
			if resp := hs.invoke(t, post(pbXML("N101", "T-"+at, id))); resp.StatusCode != 200 {
				t.Errorf("retry right after: status %d, want 200", resp.StatusCode)
			}
			if got := hs.events(t); strings.Join(got, ",") != strings.Join(want, ",") {
				t.Errorf("events %v, want %v", got, want)
			}
		})
	}
}

// TestAttackPostbackAfterExpired: a call timed out (in doubt), the request
// then ended expired (retry window spent, no postback yet), and Skycore's
// delivery receipt of that call arrives later with CLIENT_REFERENCE. The
// decision (README, "What can still go wrong"): exactly one terminal event
// stands (no second, accepted), and the receipt still reaches the
// application under its id, after it, counted as LateReceipt: hiding that
// the handset got the message would be worse.
func TestAttackPostbackAfterExpired(t *testing.T) {
	ctx := context.Background()
	hs := newHarness(t)
	id := "exp-then-delivered"
	hs.store.Claim(ctx, id, store.Claim{Owner: "s1", Lease: hs.now().Add(time.Minute)})
	hs.store.Doubt(ctx, id, "s1", hs.now().Add(time.Second), store.Outcome{Attempt: 1, Code: "TIMEOUT"})
	hs.at(2 * time.Second)
	if ok, _, _ := hs.store.Claim(ctx, id, store.Claim{Owner: "s2", Lease: hs.now().Add(time.Minute), InDoubt: time.Second}); !ok {
		t.Fatal("claim after the doubt window")
	}
	if won, _, _ := hs.store.Expire(ctx, id, "s2", hs.now().Add(-time.Millisecond), store.Outcome{Code: "TIMEOUT"}); !won {
		t.Fatal("expire")
	}
	hs.store.EventSent(ctx, id)
	if resp := hs.invoke(t, post(pbXML("N102", "T-exp", id))); resp.StatusCode != 200 {
		t.Fatalf("status %d", resp.StatusCode)
	}
	got := hs.events(t)
	if len(got) != 1 || !strings.HasPrefix(got[0], id+":delivered") {
		t.Errorf("events = %v, want only the receipt, under the id (no second terminal event)", got)
	}
	if !strings.Contains(hs.logs.String(), `"LateReceipt":1`) {
		t.Error("no LateReceipt metric")
	}
}

// TestAttackConcurrentRetriesNeverMoveBack: Skycore's at-least-once
// retries of N101 and N102 of one tracking id arrive concurrently, eight
// each, answered 503 when busy and retried until 200. Each state goes out
// at most once, and sent never after delivered.
func TestAttackConcurrentRetriesNeverMoveBack(t *testing.T) {
	ctx := context.Background()
	hs := newHarness(t)
	hs.store.Claim(ctx, "conc-1", store.Claim{Owner: "sender", Lease: hs.now().Add(time.Minute)})
	hs.store.Accept(ctx, "conc-1", "sender", hs.now().Add(-time.Second), store.Outcome{TrackingID: "T-conc"})
	hs.store.EventSent(ctx, "conc-1")
	hs.link(t, "T-conc", "conc-1")
	var wg sync.WaitGroup
	for i := range 16 {
		code := "N101"
		if i%2 == 1 {
			code = "N102"
		}
		wg.Go(func() {
			for try := 0; try < 200; try++ {
				if hs.invoke(t, post(pbXML(code, "T-conc", ""))).StatusCode == 200 {
					return
				}
				time.Sleep(5 * time.Millisecond)
			}
			t.Errorf("%s never answered 200", code)
		})
	}
	wg.Wait()
	got := hs.events(t)
	sent, delivered := 0, 0
	for _, e := range got {
		switch e {
		case "conc-1:sent:N101":
			sent++
			if delivered > 0 {
				t.Errorf("sent after delivered: %v", got)
			}
		case "conc-1:delivered:N102":
			delivered++
		default:
			t.Errorf("unexpected event %s", e)
		}
	}
	if delivered != 1 || sent > 1 {
		t.Errorf("events %v: want delivered once, sent at most once", got)
	}
}

// TestAttackForgedTokens: near-miss tokens never get past 403 and never
// publish.
func TestAttackForgedTokens(t *testing.T) {
	hs := newHarness(t)
	hs.link(t, "T-forge", "forge-1")
	for _, tok := range []string{"", token[:len(token)-1], token + "x", strings.ToUpper(token), " " + token, token + "/", "%20" + token} {
		req := post(pbXML("N102", "T-forge", ""))
		req.PathParameters = map[string]string{"token": tok}
		req.RawPath = "/skycore/postbacks/" + tok
		if resp := hs.invoke(t, req); resp.StatusCode != 403 {
			t.Errorf("token %q: status %d, want 403", tok, resp.StatusCode)
		}
	}
	// No path parameter: the raw path's last segment must be the token.
	req := post(pbXML("N102", "T-forge", ""))
	req.PathParameters = nil
	req.RawPath = "/skycore/postbacks/" + token + "/x"
	if resp := hs.invoke(t, req); resp.StatusCode != 403 {
		t.Errorf("token not last: status %d, want 403", resp.StatusCode)
	}
	if got := hs.events(t); len(got) != 0 {
		t.Errorf("events %v from forged postbacks", got)
	}
}

// TestAttackOddTrackingIDs: tracking ids at the key limit, with key-ish
// characters, or looking like another item's key are processed as
// themselves (503 in the join window, then one unjoined event); one byte
// over the limit, under its surrogate key (store.KeyOf), just the same.
func TestAttackOddTrackingIDs(t *testing.T) {
	hs := newHarness(t)
	tids := []string{strings.Repeat("a", store.MaxKeyBytes-len("trk#")), "msg#victim", "a#b:c/d?e=f&g", "трекинг-ид", "x y z",
		strings.Repeat("b", store.MaxKeyBytes-len("trk#")+1)}
	for _, tid := range tids {
		if resp := hs.invoke(t, post(pbXML("N101", tid, ""))); resp.StatusCode != 503 {
			t.Errorf("tracking id %.20q: status %d, want 503 in the join window", tid, resp.StatusCode)
		}
	}
	hs.at(JoinWindow + time.Minute)
	for _, tid := range tids {
		if resp := hs.invoke(t, post(pbXML("N101", tid, ""))); resp.StatusCode != 200 {
			t.Errorf("tracking id %.20q: status %d", tid, resp.StatusCode)
		}
	}
	got := hs.events(t)
	if len(got) != len(tids) {
		t.Errorf("events %v, want %d (one per tracking id)", got, len(tids))
	}
	if m, _ := hs.store.Get(context.Background(), "victim"); m != nil {
		t.Errorf("a tracking id wrote msg#victim: %+v", m)
	}
	for _, e := range got {
		if e != ":sent:N101" {
			t.Errorf("event %s: want an unjoined sent", e)
		}
	}
}
