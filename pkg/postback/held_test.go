package postback

import (
	"context"
	"errors"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/mmsgate/mmsgate/pkg/store"
)

// TestHeldWrongTokenBeforeAnyWrite: a wrong token is 403 before the
// handler touches the table at all, even for a batch of unknown ids.
func TestHeldWrongTokenBeforeAnyWrite(t *testing.T) {
	r := newMemRig(t)
	var calls atomic.Int32
	r.db.Fail(func(op, key string) error {
		calls.Add(1)
		return errors.New("no call expected")
	})
	for _, body := range []string{pbXML("N102", "T-x", "req-x"), batched("N101", []string{"A", "B"}, []string{"a", "b"})} {
		req := post(body)
		req.PathParameters = map[string]string{"token": token + "x"}
		req.RawPath = "/skycore/postbacks/" + token + "x"
		resp, err := r.h.Handle(context.Background(), req)
		if err != nil || resp.StatusCode != 403 {
			t.Errorf("status %d, %v; want 403", resp.StatusCode, err)
		}
	}
	if n := calls.Load(); n != 0 || len(r.events) != 0 {
		t.Errorf("%d DynamoDB calls, %d events behind a wrong token; want none", n, len(r.events))
	}
}

// TestHeldReplayWithinTTLIsDuplicate: a postback replayed later is a
// duplicate as long as its tracking item lives; a tracking item that a
// postback created first (before the sender's link) is kept the records'
// TTL once linked, not the unlinked hold.
func TestHeldReplayWithinTTLIsDuplicate(t *testing.T) {
	ctx := context.Background()
	r := newMemRig(t)
	body := pbXML("N101", "T-replay", "")
	if code := r.handle(t, body); code != 503 { // not linked yet: the join window
		t.Fatalf("status %d, want 503 before the link", code)
	}
	r.st.Claim(ctx, "replay-1", store.Claim{Owner: "s", Lease: time.Now().Add(time.Minute)})
	r.st.Accept(ctx, "replay-1", "s", time.Now(), store.Outcome{TrackingID: "T-replay"})
	r.st.EventSent(ctx, "replay-1")
	if err := r.st.Link(ctx, "T-replay", "replay-1", nil); err != nil {
		t.Fatal(err)
	}
	for range 3 {
		if code := r.handle(t, body); code != 200 {
			t.Fatalf("status %d", code)
		}
	}
	if len(r.events) != 1 || r.events[0].ID != "replay-1" {
		t.Errorf("events %+v; want one, joined", r.events)
	}
	exp, _ := strconv.ParseInt(r.item(t, "trk#T-replay")["exp"].(*types.AttributeValueMemberN).Value, 10, 64)
	if exp < time.Now().Add(store.DefaultTTL-time.Hour).Unix() {
		t.Errorf("trk#T-replay kept until %s; want the records' TTL once linked", time.Unix(exp, 0))
	}
}
