package postback

import (
	"bytes"
	"context"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/mmsgate/mmsgate/internal/localenv"
	"github.com/mmsgate/mmsgate/internal/memdb"
	"github.com/mmsgate/mmsgate/pkg/delivery"
	"github.com/mmsgate/mmsgate/pkg/emf"
	"github.com/mmsgate/mmsgate/pkg/secret"
	"github.com/mmsgate/mmsgate/pkg/store"
)

// memRig is the handler on memdb with a recording publisher, for tests
// that read raw items.
type memRig struct {
	h       *Handler
	db      *memdb.DB
	st      *store.Store
	mu      sync.Mutex
	events  []delivery.Event
	metrics bytes.Buffer
}

func newMemRig(t *testing.T) *memRig {
	t.Helper()
	r := &memRig{db: memdb.New()}
	if err := store.CreateTable(context.Background(), r.db, localenv.Table); err != nil {
		t.Fatal(err)
	}
	r.st = store.New(r.db, localenv.Table, 0)
	r.h = NewHandler(Deps{
		Tokens: fakeTokens{GetFn: func(context.Context) (secret.Values, error) { return secret.Values{PostbackToken: token}, nil }},
		Store:  r.st,
		Events: fakePublisher{PublishFn: func(_ context.Context, e delivery.Event) error {
			r.mu.Lock()
			defer r.mu.Unlock()
			r.events = append(r.events, e)
			return nil
		}},
		Metrics: emf.New(&r.metrics, "mmsgate", nil),
	})
	r.h.waits = nil
	return r
}

func (r *memRig) handle(t *testing.T, body string) int {
	t.Helper()
	resp, err := r.h.Handle(context.Background(), post(body))
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode
}

func (r *memRig) item(t *testing.T, pk string) map[string]types.AttributeValue {
	t.Helper()
	out, err := r.db.GetItem(context.Background(), &dynamodb.GetItemInput{TableName: aws.String(localenv.Table),
		Key: map[string]types.AttributeValue{"pk": &types.AttributeValueMemberS{Value: pk}}, ConsistentRead: aws.Bool(true)})
	if err != nil {
		t.Fatal(err)
	}
	return out.Item
}

// batched is the legacy batched form with one NOTIFICATION per tracking id.
func batched(code string, tids, refs []string) string {
	var b strings.Builder
	b.WriteString("<?xml version='1.0'?>\n<POSTBACK>\n")
	for i, tid := range tids {
		fmt.Fprintf(&b, ` <NOTIFICATION id="%d" created="2026-11-24 16:02:11"><ORIGIN>MMS_MT</ORIGIN><CODE>%s</CODE><BODY>`+
			`<STATUS>Message Sent/Delivered to the handset of the recipient</STATUS><MMSID>48211</MMSID><TO>17743199144</TO>`+
			`<TRACKINGID>%s</TRACKINGID><CLIENT_REFERENCE>%s</CLIENT_REFERENCE><STATUSDETAILS>%s</STATUSDETAILS></BODY></NOTIFICATION>`+"\n",
			i+1, code, tid, refs[i], strings.Repeat("d", 180))
	}
	b.WriteString("</POSTBACK>\n")
	return b.String()
}

// TestAmplificationBounded: one 56 KB postback in the batched form with
// 100 unknown tracking ids and unknown CLIENT_REFERENCEs publishes at most
// MaxUnjoined events with "id": "", counts the rest, and keeps each
// tracking item it created no longer than the unlinked hold (not the
// records' 30 days).
func TestAmplificationBounded(t *testing.T) {
	r := newMemRig(t)
	var tids, refs []string
	for i := range 100 {
		tids = append(tids, fmt.Sprintf("UNKNOWN-TRK-%03d-%s", i, strings.Repeat("z", 40)))
		refs = append(refs, fmt.Sprintf("nobody-%03d", i))
	}
	body := batched("N102", tids, refs)
	if len(body) < 40<<10 || len(body) > MaxBody {
		t.Fatalf("body of %d bytes; want about 56 KB", len(body))
	}
	if code := r.handle(t, body); code != 200 {
		t.Fatalf("status %d, want 200", code)
	}
	if len(r.events) > MaxUnjoined {
		t.Errorf("%d events published; want at most %d", len(r.events), MaxUnjoined)
	}
	if !strings.Contains(r.metrics.String(), `"UnjoinedCapped":`+strconv.Itoa(100-len(r.events))) {
		t.Errorf("metrics %s; want UnjoinedCapped %d", r.metrics.String(), 100-len(r.events))
	}
	stored := 0
	limit := time.Now().Add(store.UnlinkedTTL + time.Minute).Unix()
	for _, tid := range tids {
		it := r.item(t, "trk#"+tid)
		if it == nil {
			continue
		}
		stored++
		exp, _ := strconv.ParseInt(it["exp"].(*types.AttributeValueMemberN).Value, 10, 64)
		if exp > limit {
			t.Errorf("trk#%s kept until %s; want at most %s", tid[:16], time.Unix(exp, 0), store.UnlinkedTTL)
		}
	}
	if stored > MaxUnjoined {
		t.Errorf("%d tracking items written; want at most %d", stored, MaxUnjoined)
	}
}

// TestCapKeepsKnownNotifications: past the cap, a batch's notifications
// of known requests are still processed, and a linked tracking item is
// kept for the records' TTL.
func TestCapKeepsKnownNotifications(t *testing.T) {
	ctx := context.Background()
	r := newMemRig(t)
	var tids, refs []string
	for i := range MaxUnjoined + 5 {
		tids = append(tids, fmt.Sprintf("U-%d", i))
		refs = append(refs, fmt.Sprintf("nobody-%d", i))
	}
	// Known ones after the unknown: one linked, one by CLIENT_REFERENCE.
	r.st.Claim(ctx, "known-1", store.Claim{Owner: "s", Lease: time.Now().Add(time.Minute)})
	r.st.Accept(ctx, "known-1", "s", time.Now(), store.Outcome{TrackingID: "K-1"})
	r.st.EventSent(ctx, "known-1")
	if err := r.st.Link(ctx, "K-1", "known-1", nil); err != nil {
		t.Fatal(err)
	}
	r.st.Claim(ctx, "known-2", store.Claim{Owner: "s", Lease: time.Now().Add(time.Minute)})
	r.st.Accept(ctx, "known-2", "s", time.Now(), store.Outcome{Code: "NO_TRACKINGID"})
	r.st.EventSent(ctx, "known-2")
	tids, refs = append(tids, "K-1", "K-2"), append(refs, "", "known-2")
	if code := r.handle(t, batched("N101", tids, refs)); code != 200 {
		t.Fatalf("status %d", code)
	}
	var got []string
	for _, e := range r.events {
		if e.ID != "" {
			got = append(got, e.ID+":"+e.Event)
		}
	}
	if want := "[known-1:sent known-2:sent]"; fmt.Sprint(got) != want {
		t.Errorf("joined events %v; want %s", got, want)
	}
	exp, _ := strconv.ParseInt(r.item(t, "trk#K-2")["exp"].(*types.AttributeValueMemberN).Value, 10, 64)
	if exp < time.Now().Add(store.DefaultTTL-time.Hour).Unix() {
		t.Errorf("trk#K-2 (linked through CLIENT_REFERENCE) kept until %s; want the records' TTL", time.Unix(exp, 0))
	}
}
