package client_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"regexp"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"
	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/mmsgate/mmsgate/client"
	"github.com/mmsgate/mmsgate/pkg/apperr"
	"github.com/mmsgate/mmsgate/pkg/sendreq"
)

// violation is what a test expects of one *apperr.Error.
type violation struct {
	Code  apperr.Code
	Field string
}

func violations(err error) []violation {
	var out []violation
	for _, e := range apperr.All(err) {
		out = append(out, violation{e.Code, e.Field})
	}
	return out
}

var policy = client.Policy{DefaultFrom: "60856"}

func valid(id string) client.Request {
	return client.Request{ID: id, To: "17743199144", MMSID: "48211"}
}

// contractRequest is the request of docs/request.md, read from the sample SQS
// event the sender's tests use.
func contractRequest(t *testing.T) client.Request {
	t.Helper()
	var ev struct{ Records []struct{ Body string } }
	b, err := os.ReadFile("../events/sqs/contract-example.json")
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &ev); err != nil {
		t.Fatal(err)
	}
	r, err := sendreq.Decode([]byte(ev.Records[0].Body))
	if err != nil {
		t.Fatalf("sendreq.Decode(contract example) = %v", err)
	}
	return *r
}

func TestValidate(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		req    client.Request
		policy client.Policy
		want   []violation
		// wantFrom and wantMMSID are the enqueued request's, when valid.
		wantFrom  string
		wantMMSID client.MMSID
	}{
		{name: "minimal, from the policy", req: valid("a"), policy: policy, wantFrom: "60856", wantMMSID: "48211"},
		{name: "own from kept", req: client.Request{ID: "a", To: "17743199144", From: "12345", MMSID: "1"}, policy: policy, wantFrom: "12345", wantMMSID: "1"},
		{name: "leading zeros dropped", req: client.Request{ID: "a", To: "17743199144", MMSID: "048211"}, policy: policy, wantFrom: "60856", wantMMSID: "48211"},
		{name: "no from anywhere", req: valid("a"), want: []violation{{"E111", "from"}}},
		{name: "campaign enforced", req: valid("a"), policy: client.Policy{DefaultFrom: "1", EnforceCampaignCheck: true}, want: []violation{{"E718", "campaignRef"}}},
		{name: "empty request lists every field", req: client.Request{}, policy: policy,
			want: []violation{{"E100", "id"}, {"E621", "to"}, {"E620", "mmsId"}}},
		{name: "bad id, to and mmsId", req: client.Request{ID: "a b", To: "+1 774", MMSID: "x"}, policy: policy,
			want: []violation{{"E100", "id"}, {"E110", "to"}, {"E620", "mmsId"}}},
		{name: "mmsId over 2^63-1", req: client.Request{ID: "a", To: "17743199144", MMSID: "9223372036854775808"}, policy: policy,
			want: []violation{{"E620", "mmsId"}}},
		{name: "slides and vcard", policy: policy, req: client.Request{ID: "a", To: "17743199144", MMSID: "1",
			Slides: []client.Slide{{Slide: 9, Text: "x"}, {Slide: 1}},
			VCard:  &client.VCard{FirstName: "Jane", Phones: []client.Phone{{Number: "1", Label: "mobile"}}}},
			want: []violation{{"E100", "slides[0].slide"}, {"E100", "slides[1].text"}, {"E1516", "vcard.phones[0].label"}}},
		{name: "empty vcard", req: client.Request{ID: "a", To: "17743199144", MMSID: "1", VCard: &client.VCard{}}, policy: policy,
			want: []violation{{"E1501", "vcard"}}},
		{name: "XML-illegal character", req: client.Request{ID: "a", To: "17743199144", MMSID: "1", Subject: "a\x00b"}, policy: policy,
			want: []violation{{"E108", "subject"}}},
		{name: "metadata", req: client.Request{ID: "a", To: "17743199144", MMSID: "1", Metadata: map[string]string{"orderId": "8812", "tenant:x.y-z_1": "acme"}},
			policy: policy, wantFrom: "60856", wantMMSID: "1"},
		{name: "metadata key and value", req: client.Request{ID: "a", To: "17743199144", MMSID: "1",
			Metadata: map[string]string{"order id": "1", "note": strings.Repeat("v", 513)}}, policy: policy,
			want: []violation{{"E100", "metadata.note"}, {"E100", "metadata.order id"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			before := tt.req
			got, err := client.Validate(tt.req, tt.policy)
			if diff := cmp.Diff(tt.want, violations(err)); diff != "" {
				t.Errorf("Validate violations (-want +got):\n%s", diff)
			}
			if (err != nil) != errors.Is(err, client.ErrInvalid) {
				t.Errorf("Validate error %v: errors.Is(ErrInvalid) = %v", err, errors.Is(err, client.ErrInvalid))
			}
			if diff := cmp.Diff(before, tt.req); diff != "" {
				t.Errorf("Validate changed its argument (-before +after):\n%s", diff)
			}
			if err == nil && (got.From != tt.wantFrom || got.MMSID != tt.wantMMSID) {
				t.Errorf("Validate = from %q mmsId %q, want %q %q", got.From, got.MMSID, tt.wantFrom, tt.wantMMSID)
			}
		})
	}
}

// An invalid request fails with ErrInvalid and every violation, and never
// reaches SQS, whether sent alone or in a batch.
func TestInvalidNeverReachesSQS(t *testing.T) {
	t.Parallel()
	invalid := map[string]client.Request{
		"empty":            {},
		"no from":          {ID: "a", To: "17743199144", MMSID: "1", From: ""},
		"bad to":           {ID: "a", To: "+1 774 FLOWERS", MMSID: "1", From: "1"},
		"id too long":      {ID: strings.Repeat("a", 65), To: "17743199144", MMSID: "1", From: "1"},
		"slide text empty": {ID: "a", To: "17743199144", MMSID: "1", From: "1", Slides: []client.Slide{{Slide: 1}}},
		"barcodeid empty":  {ID: "a", To: "17743199144", MMSID: "1", From: "1", Data: map[string]string{"barcodeid": ""}},
		"slide text blank": {ID: "a", To: "17743199144", MMSID: "1", From: "1", Slides: []client.Slide{{Slide: 1, Text: " \n"}}},
	}
	for name, req := range invalid {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			calls := 0
			fake := &fakeSQS{
				SendMessageFn: func(context.Context, *sqs.SendMessageInput) (*sqs.SendMessageOutput, error) {
					calls++
					return &sqs.SendMessageOutput{}, nil
				},
				SendMessageBatchFn: func(context.Context, *sqs.SendMessageBatchInput) (*sqs.SendMessageBatchOutput, error) {
					calls++
					return &sqs.SendMessageBatchOutput{}, nil
				},
			}
			c := client.New(fake, "q", client.Policy{})
			err := c.Send(t.Context(), req)
			if !errors.Is(err, client.ErrInvalid) || len(apperr.All(err)) == 0 {
				t.Errorf("Send = %v, want ErrInvalid with violations", err)
			}
			err = c.SendBatch(t.Context(), []client.Request{req, req})
			var be *client.BatchError
			if !errors.As(err, &be) || len(be.Failures) != 2 || !errors.Is(be.Failures[1].Err, client.ErrInvalid) {
				t.Errorf("SendBatch = %v, want both requests failed as invalid", err)
			}
			if calls != 0 {
				t.Errorf("SQS called %d times, want 0", calls)
			}
		})
	}
}

// The body is docs/request.md's JSON: sendreq.Decode reads back the request
// that was validated, empty optional fields are left out, and mmsId is a
// JSON number.
func TestSendBody(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		req      client.Request
		wantBody string // exact body, when given
	}{
		{name: "minimal", req: valid("a"), wantBody: `{"id":"a","to":"17743199144","from":"60856","mmsId":48211}`},
		{name: "leading zeros", req: client.Request{ID: "a", To: "17743199144", MMSID: "00048211"}, wantBody: `{"id":"a","to":"17743199144","from":"60856","mmsId":48211}`},
		{name: "largest mmsId", req: client.Request{ID: "a", To: "17743199144", MMSID: "9223372036854775807"}, wantBody: `{"id":"a","to":"17743199144","from":"60856","mmsId":9223372036854775807}`},
		{name: "empty data and slides left out", req: client.Request{ID: "a", To: "17743199144", MMSID: "1", Data: map[string]string{}, Slides: []client.Slide{}},
			wantBody: `{"id":"a","to":"17743199144","from":"60856","mmsId":1}`},
		{name: "false flags left out", req: client.Request{ID: "a", To: "17743199144", MMSID: "1", Fallback: &client.Fallback{}},
			wantBody: `{"id":"a","to":"17743199144","from":"60856","mmsId":1,"fallback":{}}`},
		{name: "contract example", req: contractRequest(t)},
		{name: "unicode and line breaks", req: client.Request{ID: "a:b.c_d-e", To: "17743199144", MMSID: "7", Subject: "Ünïcødé ✓",
			Slides: []client.Slide{{Slide: 2, Text: "line 1\nline 2\r\n<&>\"'"}}, Data: map[string]string{"firstname": "Zoë"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			q := newQueue()
			c := client.New(&q.fake, "q", policy)
			if err := c.Send(t.Context(), tt.req); err != nil {
				t.Fatalf("Send = %v", err)
			}
			if len(q.bodies) != 1 {
				t.Fatalf("%d bodies sent, want 1", len(q.bodies))
			}
			body := q.bodies[0]
			if tt.wantBody != "" && body != tt.wantBody {
				t.Errorf("body = %s\nwant   %s", body, tt.wantBody)
			}
			got, err := sendreq.Decode([]byte(body))
			if err != nil {
				t.Fatalf("sendreq.Decode(%s) = %v", body, err)
			}
			want, _ := client.Validate(tt.req, policy)
			if diff := cmp.Diff(want, *got, cmpopts.EquateEmpty()); diff != "" {
				t.Errorf("sendreq.Decode(body) (-want +got):\n%s", diff)
			}
			if err := got.Validate(policy); err != nil {
				t.Errorf("the sender's Validate(body) = %v", err)
			}
		})
	}
}

func TestSendError(t *testing.T) {
	t.Parallel()
	down := errors.New("connection refused")
	var gotQueue string
	fake := &fakeSQS{SendMessageFn: func(_ context.Context, in *sqs.SendMessageInput) (*sqs.SendMessageOutput, error) {
		gotQueue = aws.ToString(in.QueueUrl)
		return nil, down
	}}
	err := client.New(fake, "https://sqs.example/send", policy).Send(t.Context(), valid("a"))
	if !errors.Is(err, down) || errors.Is(err, client.ErrInvalid) {
		t.Errorf("Send = %v, want the SQS error, not ErrInvalid", err)
	}
	if gotQueue != "https://sqs.example/send" {
		t.Errorf("QueueUrl = %q, want the client's", gotQueue)
	}
}

func requests(n int) []client.Request {
	out := make([]client.Request, n)
	for i := range out {
		out[i] = valid(fmt.Sprintf("req-%02d", i))
	}
	return out
}

func TestSendBatchChunks(t *testing.T) {
	t.Parallel()
	big := func(n int) []client.Request { // bodies of about 121 KB: two fit in 256 KiB, three do not
		out := requests(n)
		for i := range out {
			for s := 1; s <= 8; s++ {
				out[i].Slides = append(out[i].Slides, client.Slide{Slide: s, Text: strings.Repeat("✓", 5000)}) // 3 bytes a character
			}
			out[i].Data = map[string]string{"a": strings.Repeat("x", 1000)}
		}
		return out
	}
	tests := []struct {
		name string
		reqs []client.Request
		want []int // entries per call
	}{
		{name: "none", reqs: nil, want: nil},
		{name: "one", reqs: requests(1), want: []int{1}},
		{name: "ten", reqs: requests(10), want: []int{10}},
		{name: "eleven", reqs: requests(11), want: []int{10, 1}},
		{name: "twenty-five", reqs: requests(25), want: []int{10, 10, 5}},
		{name: "bodies over 256 KiB split", reqs: big(7), want: []int{2, 2, 2, 1}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			q := newQueue()
			if err := client.New(&q.fake, "q", policy).SendBatch(t.Context(), tt.reqs); err != nil {
				t.Fatalf("SendBatch = %v", err)
			}
			if diff := cmp.Diff(tt.want, q.calls); diff != "" {
				t.Errorf("entries per call (-want +got):\n%s", diff)
			}
			var ids []string
			for _, b := range q.bodies {
				ids = append(ids, sendreq.PeekID([]byte(b)))
			}
			var want []string
			for _, r := range tt.reqs {
				want = append(want, r.ID)
			}
			if diff := cmp.Diff(want, ids); diff != "" {
				t.Errorf("ids enqueued, in order (-want +got):\n%s", diff)
			}
		})
	}
}

// failure is what a test expects of one client.Failure.
type failure struct {
	Index     int
	ID        string
	Reason    string
	Retryable bool
}

func reason(err error) string {
	var ee *client.EntryError
	switch {
	case errors.Is(err, client.ErrInvalid):
		return "invalid"
	case errors.Is(err, client.ErrDuplicateID):
		return "duplicate"
	case errors.Is(err, client.ErrNoResult):
		return "no result"
	case errors.As(err, &ee):
		return "sqs " + ee.Code
	}
	return "call: " + err.Error()
}

func TestSendBatchPartialFailures(t *testing.T) {
	t.Parallel()
	reqs := requests(25)
	reqs[3].To = "123"      // invalid
	reqs[5].ID = reqs[4].ID // repeated
	reqs[12].MMSID = ""     // invalid
	q := newQueue()
	// Valid requests: 0-2, 4, 6-11, 13-24; calls of 10 (0-11), 10 (13-22)
	// and 2 (23, 24). An entry id is the position in its call, then the id.
	q.refuse = map[string]sqstypes.BatchResultErrorEntry{
		client.EntryID(5, reqs[7].ID):  {Code: aws.String("InvalidParameterValue"), Message: aws.String("bad"), SenderFault: true},
		client.EntryID(9, reqs[11].ID): {Code: aws.String("InternalError"), Message: aws.String("try again"), SenderFault: false},
	}
	batch := q.fake.SendMessageBatchFn
	calls := 0
	q.fake.SendMessageBatchFn = func(ctx context.Context, in *sqs.SendMessageBatchInput) (*sqs.SendMessageBatchOutput, error) {
		calls++
		switch calls {
		case 2: // enqueues every entry but forgets to report the last one
			out, err := batch(ctx, in)
			out.Successful = out.Successful[:len(out.Successful)-1]
			return out, err
		case 3:
			return nil, errors.New("throttled")
		}
		return batch(ctx, in)
	}
	err := client.New(&q.fake, "q", policy).SendBatch(t.Context(), reqs)
	var be *client.BatchError
	if !errors.As(err, &be) {
		t.Fatalf("SendBatch = %v, want *BatchError", err)
	}
	var got []failure
	for _, f := range be.Failures {
		got = append(got, failure{f.Index, f.ID, reason(f.Err), f.Retryable()})
	}
	want := []failure{
		{3, "req-03", "invalid", false},
		{5, "req-04", "duplicate", false},
		{7, "req-07", "sqs InvalidParameterValue", false},
		{11, "req-11", "sqs InternalError", true},
		{12, "req-12", "invalid", false},
		{22, "req-22", "no result", true},
		{23, "req-23", "call: send batch: throttled", true},
		{24, "req-24", "call: send batch: throttled", true},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("failures (-want +got):\n%s", diff)
	}
	// req-22 is on the queue all the same: "no result" means "maybe".
	if be.Total != 25 || len(q.bodies) != 25-len(want)+1 {
		t.Errorf("Total = %d, enqueued %d; want 25, %d", be.Total, len(q.bodies), 25-len(want)+1)
	}
	if !errors.Is(err, client.ErrInvalid) {
		t.Errorf("errors.Is(%v, ErrInvalid) = false, want true", err)
	}
	if diff := cmp.Diff([]string{"req-03", "req-04", "req-07", "req-11", "req-12", "req-22", "req-23", "req-24"}, be.IDs()); diff != "" {
		t.Errorf("IDs (-want +got):\n%s", diff)
	}
}

func TestSendBatchDoneContext(t *testing.T) {
	t.Parallel()
	q := newQueue()
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	err := client.New(&q.fake, "q", policy).SendBatch(ctx, requests(12))
	var be *client.BatchError
	if !errors.As(err, &be) || len(be.Failures) != 12 || !errors.Is(err, context.Canceled) {
		t.Fatalf("SendBatch(done ctx) = %v, want all 12 failed with context.Canceled", err)
	}
	if len(q.calls) != 0 {
		t.Errorf("%d SQS calls, want 0", len(q.calls))
	}
}

var entryIDRule = regexp.MustCompile(`^[A-Za-z0-9_-]{1,80}$`)

func TestEntryID(t *testing.T) {
	t.Parallel()
	long := strings.Repeat("a.b:", 16) // 64 characters, the longest id
	tests := []struct {
		i    int
		id   string
		want string
	}{
		{0, "order-1", "0-order-1"},
		{9, "a.b:c_d-E", "9-a_b_c_d-E"},
		{3, long, "3-" + strings.Repeat("a_b_", 16)},
		{123, strings.Repeat("x", 200), "123-" + strings.Repeat("x", 76)},
		{0, "", "0-"},
		{1, "é/ü", "1-" + strings.Repeat("_", len("é/ü"))},
	}
	for _, tt := range tests {
		t.Run(tt.want, func(t *testing.T) {
			t.Parallel()
			got := client.EntryID(tt.i, tt.id)
			if got != tt.want {
				t.Errorf("EntryID(%d, %q) = %q, want %q", tt.i, tt.id, got, tt.want)
			}
			if !entryIDRule.MatchString(got) {
				t.Errorf("EntryID(%d, %q) = %q breaks SQS's rule", tt.i, tt.id, got)
			}
		})
	}
	t.Run("distinct in a call whatever the ids", func(t *testing.T) {
		t.Parallel()
		ids := []string{"a.b", "a:b", "a_b", "a.b", "0-a", "", long, long + "x"}
		seen := map[string]bool{}
		for i, id := range ids {
			e := client.EntryID(i, id)
			if seen[e] {
				t.Errorf("EntryID(%d, %q) = %q, already given", i, id, e)
			}
			seen[e] = true
		}
	})
}

// The bulk lane: the same validated body, on the bulk queue; the client it
// came from still sends to the send queue.
func TestBulkLane(t *testing.T) {
	t.Parallel()
	var urls []string
	fake := &fakeSQS{
		SendMessageFn: func(_ context.Context, in *sqs.SendMessageInput) (*sqs.SendMessageOutput, error) {
			urls = append(urls, *in.QueueUrl)
			return &sqs.SendMessageOutput{MessageId: aws.String("m")}, nil
		},
		SendMessageBatchFn: func(_ context.Context, in *sqs.SendMessageBatchInput) (*sqs.SendMessageBatchOutput, error) {
			out := &sqs.SendMessageBatchOutput{}
			for _, e := range in.Entries {
				urls = append(urls, *in.QueueUrl)
				out.Successful = append(out.Successful, sqstypes.SendMessageBatchResultEntry{Id: e.Id, MessageId: aws.String("m")})
			}
			return out, nil
		},
	}
	c := client.New(fake, "send-url", policy)
	bulk := c.Bulk("bulk-url")
	if err := bulk.Send(t.Context(), valid("campaign-1")); err != nil {
		t.Fatal(err)
	}
	if err := bulk.SendBatch(t.Context(), []client.Request{valid("campaign-2"), valid("campaign-3")}); err != nil {
		t.Fatal(err)
	}
	if err := c.Send(t.Context(), valid("reset-1")); err != nil {
		t.Fatal(err)
	}
	if err := bulk.Send(t.Context(), client.Request{ID: "bad", To: "1", MMSID: "1"}); !errors.Is(err, client.ErrInvalid) {
		t.Errorf("invalid bulk request: %v, want ErrInvalid", err)
	}
	if diff := cmp.Diff([]string{"bulk-url", "bulk-url", "bulk-url", "send-url"}, urls); diff != "" {
		t.Errorf("queues (-want +got):\n%s", diff)
	}
}

// TestValidateNormalises: `to` and the vCard's numbers are enqueued as
// digits (docs/request.md); the caller's request, vCard included, is left
// as written; advice is a warning, not an error.
func TestValidateNormalises(t *testing.T) {
	req := client.Request{ID: "people-1", To: "+1 (774) 319-9144", MMSID: "48211",
		Fallback: &client.Fallback{Text: strings.Repeat("f", 200)},
		VCard:    &client.VCard{LastName: "Support", PhotoURL: "https://cdn.example.com/i/8812?w=400", Phones: []client.Phone{{Number: "+1 (800) 555-0100"}}}}
	got, err := client.Validate(req, policy)
	if err != nil {
		t.Fatalf("Validate = %v, want valid", err)
	}
	if got.To != "17743199144" || got.VCard.Phones[0].Number != "18005550100" {
		t.Errorf("enqueued to %q, vCard number %q; want digits", got.To, got.VCard.Phones[0].Number)
	}
	if req.To != "+1 (774) 319-9144" || req.VCard.Phones[0].Number != "+1 (800) 555-0100" {
		t.Errorf("Validate changed its argument: to %q, vCard number %q", req.To, req.VCard.Phones[0].Number)
	}
	if w := got.Warnings(); len(w) != 1 || w[0] != "FALLBACK_TEXT_OVER_110" {
		t.Errorf("Warnings = %v, want [FALLBACK_TEXT_OVER_110]", w)
	}
}
