package postback

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-lambda-go/lambda"
	"github.com/google/go-cmp/cmp"

	"github.com/mmsgate/mmsgate/internal/apigw"
	"github.com/mmsgate/mmsgate/internal/localenv"
	"github.com/mmsgate/mmsgate/internal/sim"
	"github.com/mmsgate/mmsgate/pkg/sendreq"
	"github.com/mmsgate/mmsgate/pkg/skycore"
)

const token = "local-postback-token"

func (hs *harness) now() time.Time { return hs.base.Add(hs.off + time.Since(hs.base)) }

// at moves the clock of the handler and the store to d after the start.
func (hs *harness) at(d time.Duration) { hs.off = d }

func (hs *harness) invoke(t *testing.T, ev events.APIGatewayV2HTTPRequest) events.APIGatewayV2HTTPResponse {
	t.Helper()
	payload, _ := json.Marshal(ev)
	out, err := lambda.NewHandler(hs.h.Handle).Invoke(context.Background(), payload)
	if err != nil {
		t.Fatal(err)
	}
	var resp events.APIGatewayV2HTTPResponse
	if err := json.Unmarshal(out, &resp); err != nil {
		t.Fatal(err)
	}
	return resp
}

// post builds a POST of a fixture (or raw body) with the right token.
func post(body string) events.APIGatewayV2HTTPRequest {
	return events.APIGatewayV2HTTPRequest{
		RawPath: "/skycore/postbacks/" + token, PathParameters: map[string]string{"token": token},
		Headers: map[string]string{"content-type": "text/xml"}, Body: body,
		RequestContext: events.APIGatewayV2HTTPRequestContext{HTTP: events.APIGatewayV2HTTPRequestContextHTTPDescription{Method: "POST"}},
	}
}

func fixture(t *testing.T, name string) string {
	t.Helper()
	b, err := os.ReadFile("testdata/" + name + ".xml")
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func (hs *harness) events(t *testing.T) []string {
	t.Helper()
	evs, err := hs.drain()
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range evs {
		out = append(out, e.ID+":"+e.Event+":"+e.Code)
	}
	return out
}

func loadAPIGW(t *testing.T, name string) events.APIGatewayV2HTTPRequest {
	t.Helper()
	var ev events.APIGatewayV2HTTPRequest
	if err := localenv.ReadEvent("events/apigw/"+name+".json", &ev); err != nil {
		t.Fatal(err)
	}
	return ev
}

func TestSampleEvents(t *testing.T) {
	tests := []struct {
		file       string
		wantStatus int
		wantEvents []string
	}{
		{"postback-raw-xml", 200, []string{"sample:sent:N101"}},
		{"postback-form-base64", 200, []string{"sample:delivered:N102"}},
		{"postback-no-content-type-base64", 200, []string{"sample:sent:N101"}},
		{"postback-raw-xml-form-content-type", 200, []string{"sample:sent:N101"}},
		{"postback-wrong-token", 403, nil},
		{"postback-get", 405, nil},
	}
	hs := newHarness(t)
	// The sender linked these tracking ids (TestJoinRace covers the rest).
	for _, tid := range []string{"T-apigw-raw", "T-apigw-form", "T-apigw-nct", "T-apigw-rawform"} {
		if err := hs.store.Link(context.Background(), tid, "sample", nil); err != nil {
			t.Fatal(err)
		}
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			resp := hs.invoke(t, loadAPIGW(t, tt.file))
			if resp.StatusCode != tt.wantStatus {
				t.Errorf("status = %d, want %d", resp.StatusCode, tt.wantStatus)
			}
			if diff := cmp.Diff(tt.wantEvents, hs.events(t)); diff != "" {
				t.Errorf("events (-want +got):\n%s", diff)
			}
			if strings.Contains(resp.Body, "T-apigw") || strings.Contains(resp.Body, "<") {
				t.Errorf("response echoes the request: %q", resp.Body)
			}
		})
	}
	if !strings.Contains(hs.logs.String(), `"Rejected403":1`) {
		t.Error("no Rejected403 metric")
	}
}

func TestJoinAndDedupe(t *testing.T) {
	hs := newHarness(t)
	ctx := context.Background()
	if err := hs.store.Link(ctx, "DrXAFP-Ylpc-JZL", "order-8812-shipped", nil); err != nil {
		t.Fatal(err)
	}
	steps := []struct {
		fixture string
		want    []string
	}{
		{"n101-mms", []string{"order-8812-shipped:sent:N101"}},
		{"n101-mms", nil}, // Skycore's retry of the same postback
		{"n102-delivered", []string{"order-8812-shipped:delivered:N102"}},
		{"n102-delivered", nil},
		{"fallback-n101-sms", nil}, // sent after delivered: history only
		{"e102-rejected", nil},     // a second final state does not replace the first
	}
	for i, s := range steps {
		if resp := hs.invoke(t, post(fixture(t, s.fixture))); resp.StatusCode != 200 {
			t.Fatalf("step %d %s: status %d", i, s.fixture, resp.StatusCode)
		}
		if diff := cmp.Diff(s.want, hs.events(t)); diff != "" {
			t.Errorf("step %d %s events (-want +got):\n%s", i, s.fixture, diff)
		}
	}
}

func TestOutOfOrder(t *testing.T) {
	hs := newHarness(t)
	hs.link(t, "DrXAFP-Ylpc-JZL", "order-1")
	for _, f := range []string{"n102-delivered", "n101-mms"} {
		hs.invoke(t, post(fixture(t, f)))
	}
	if diff := cmp.Diff([]string{"order-1:delivered:N102"}, hs.events(t)); diff != "" {
		t.Errorf("events (-want +got):\n%s", diff)
	}
}

func TestFailuresAsk5xx(t *testing.T) {
	// Bug 5: the failed invocation released its hold, so a retry right
	// after (same clock) succeeds as soon as the queue is back.
	t.Run("events queue down, then an immediate retry emits once", func(t *testing.T) {
		hs := newHarness(t)
		hs.link(t, "DrXAFP-Ylpc-JZL", "order-1")
		hs.sqsFaults.RefuseSends(func(string) error { return errors.New("down") })
		if resp := hs.invoke(t, post(fixture(t, "n101-mms"))); resp.StatusCode < 500 {
			t.Fatalf("status = %d, want 5xx so that Skycore retries", resp.StatusCode)
		}
		hs.sqsFaults.RefuseSends(nil)
		if resp := hs.invoke(t, post(fixture(t, "n101-mms"))); resp.StatusCode != 200 {
			t.Fatalf("retry status = %d, want 200 (the failed invocation must release its hold)", resp.StatusCode)
		}
		if diff := cmp.Diff([]string{"order-1:sent:N101"}, hs.events(t)); diff != "" {
			t.Errorf("events (-want +got):\n%s", diff)
		}
		hs.invoke(t, post(fixture(t, "n101-mms")))
		if got := hs.events(t); len(got) != 0 {
			t.Errorf("a third delivery emitted %v", got)
		}
	})
	t.Run("DynamoDB throttled", func(t *testing.T) {
		hs := newHarnessOn(t, !testing.Short()) // the SDK's retries through the fault proxy
		hs.throttle()
		if resp := hs.invoke(t, post(fixture(t, "n101-mms"))); resp.StatusCode != 503 {
			t.Fatalf("status = %d, want 503", resp.StatusCode)
		}
	})
	t.Run("secret unavailable", func(t *testing.T) {
		hs := newHarness(t)
		hs.secretsFaults.SetDown(true)
		if resp := hs.invoke(t, post(fixture(t, "n101-mms"))); resp.StatusCode != 503 {
			t.Fatalf("status = %d, want 503", resp.StatusCode)
		}
	})
}

// link records trackingID → id as the sender does after an acceptance.
func (hs *harness) link(t *testing.T, trackingID, id string) {
	t.Helper()
	if err := hs.store.Link(context.Background(), trackingID, id, nil); err != nil {
		t.Fatal(err)
	}
}

func TestUnprocessableIs200(t *testing.T) {
	hs := newHarness(t)
	for _, f := range []string{"junk", "truncated", "unknown-code", "no-trackingid", "billion-laughs", "deep-nesting", "invalid-utf8", "n003-template-encoded", "e002-audio-failed"} {
		// Base64, as API Gateway passes bytes that are not valid text.
		r := post(base64.StdEncoding.EncodeToString([]byte(fixture(t, f))))
		r.IsBase64Encoded = true
		if resp := hs.invoke(t, r); resp.StatusCode != 200 {
			t.Errorf("%s: status %d, want 200 (a retry would not help)", f, resp.StatusCode)
		}
	}
	if got := hs.events(t); len(got) != 0 {
		t.Errorf("events = %v", got)
	}
	logs := hs.logs.String()
	if !strings.Contains(logs, `"Malformed":1`) || !strings.Contains(logs, `"TemplateNotice":1`) {
		t.Errorf("want Malformed and TemplateNotice metrics")
	}
	for _, line := range strings.Split(strings.TrimSpace(logs), "\n") {
		var v struct{ Head string }
		json.Unmarshal([]byte(line), &v)
		if len([]rune(v.Head)) > 200 || strings.Contains(line, "</POSTBACK>\n") {
			t.Errorf("log line holds more than a truncated copy of the body: %s", line)
		}
	}
}

func TestHostileInput(t *testing.T) {
	hs := newHarness(t)
	big := strings.Repeat("x", MaxBody+1)
	tests := []struct {
		name string
		req  events.APIGatewayV2HTTPRequest
		want int
	}{
		{"1 MiB raw", post("<POSTBACK>" + strings.Repeat("a", 1<<20) + "</POSTBACK>"), 413},
		{"64 KiB + 1", post(big), 413},
		{"100 MiB base64", func() events.APIGatewayV2HTTPRequest {
			r := post("")
			r.IsBase64Encoded, r.Body = true, strings.Repeat("QUFB", 100<<20/4)
			return r
		}(), 413},
		{"bad base64", func() events.APIGatewayV2HTTPRequest { r := post("%%%"); r.IsBase64Encoded = true; return r }(), 200},
		{"form without xml", func() events.APIGatewayV2HTTPRequest {
			r := post("foo=bar")
			r.Headers["content-type"] = "application/x-www-form-urlencoded"
			return r
		}(), 200},
		{"valid token, garbage", post("\x00\x01\x02garbage"), 200},
		{"missing token", func() events.APIGatewayV2HTTPRequest {
			r := post(fixture(t, "n101-mms"))
			r.PathParameters, r.RawPath = nil, "/skycore/postbacks/"
			return r
		}(), 403},
		{"token prefix", func() events.APIGatewayV2HTTPRequest {
			r := post(fixture(t, "n101-mms"))
			r.PathParameters["token"] = token[:5]
			return r
		}(), 403},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, _ := hs.h.Handle(context.Background(), tt.req)
			if resp.StatusCode != tt.want {
				t.Errorf("status = %d, want %d", resp.StatusCode, tt.want)
			}
		})
	}
	t.Run("wrong token 10,000 times", func(t *testing.T) {
		r := post(fixture(t, "n101-mms"))
		r.PathParameters["token"] = "guess"
		for i := range 10000 {
			if resp, _ := hs.h.Handle(context.Background(), r); resp.StatusCode != 403 {
				t.Fatalf("attempt %d: status %d", i, resp.StatusCode)
			}
		}
	})
	if got := hs.events(t); len(got) != 0 {
		t.Errorf("hostile input produced events: %v", got)
	}
}

// TestEndToEnd: the simulator accepts sends and posts its postbacks through
// the HTTP→API Gateway adapter to the handler; a 5xx is retried by the
// simulator as Skycore does.
func TestEndToEnd(t *testing.T) {
	hs := newHarnessOn(t, !testing.Short())
	var calls atomic.Int32
	adapter := apigw.Handler(apigw.Route{Method: "ANY", Path: "/skycore/postbacks/{token}"}, func(ctx context.Context, payload []byte) ([]byte, error) {
		if calls.Add(1) == 1 { // the receiver is briefly down
			return json.Marshal(events.APIGatewayV2HTTPResponse{StatusCode: 503})
		}
		return lambda.NewHandler(hs.h.Handle).Invoke(ctx, payload)
	})
	recv := httptest.NewServer(adapter)
	defer recv.Close()
	cfg := sim.Default()
	cfg.PostbackURL = recv.URL + "/skycore/postbacks/" + token
	// The retry of the first (503) postback lands before the next step, so
	// the order holds; TestOutOfOrder covers the other case.
	cfg.PostbackDelay, cfg.RetryInterval = sim.Duration(150*time.Millisecond), sim.Duration(20*time.Millisecond)
	cfg.Scenarios = sim.Scenarios{Default: sim.ScenarioDelivered, Rules: []sim.ScenarioRule{
		{Match: sim.Match{ToSuffix: "0202"}, Scenario: sim.ScenarioFallbackDelivered},
		{Match: sim.Match{ToSuffix: "0101"}, Scenario: sim.ScenarioFailed},
		{Match: sim.Match{ToSuffix: "0102"}, Scenario: sim.ScenarioExpired},
	}}
	s, err := sim.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	base, _ := s.Start("127.0.0.1:0")
	defer s.Close()
	client := skycore.New(base + sim.APIPath)
	ctx := context.Background()
	send := func(id, to string) {
		resp, err := client.SendSavedMMS(ctx, "sim-api-key", &sendreq.Request{ID: id, To: to, From: "60856", MMSID: "1000"})
		if err != nil {
			t.Fatal(err)
		}
		if err := hs.store.Link(ctx, resp.TrackingID, id, nil); err != nil {
			t.Fatal(err)
		}
	}
	send("e2e-delivered", "17743199144")
	waitFor(t, s)
	send("e2e-fallback", "17745550202")
	waitFor(t, s)
	send("e2e-failed", "17745550101")
	waitFor(t, s)
	send("e2e-expired", "17745550102")
	waitFor(t, s)
	want := []string{
		"e2e-delivered:sent:N101", "e2e-delivered:delivered:N102",
		"e2e-fallback:sent:N101", "e2e-fallback:delivered:N202",
		"e2e-failed:failed:E101",
		"e2e-expired:sent:N101", "e2e-expired:undelivered:E102",
	}
	if diff := cmp.Diff(want, hs.events(t)); diff != "" {
		t.Errorf("events in order (-want +got):\n%s", diff)
	}
	var statuses []int
	for _, p := range s.Postbacks() {
		statuses = append(statuses, p.Status)
	}
	if len(statuses) != 8 || statuses[0] != 503 {
		t.Errorf("postback attempts = %v, want the first answered 503 and retried", statuses)
	}
}

func waitFor(t *testing.T, s *sim.Server) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := s.WaitIdle(ctx); err != nil {
		t.Fatal("postbacks still pending")
	}
}

func TestAdapterEncodesLikeAPIGateway(t *testing.T) {
	var got events.APIGatewayV2HTTPRequest
	h := apigw.Handler(apigw.Route{Method: "ANY", Path: "/skycore/postbacks/{token}"}, func(ctx context.Context, p []byte) ([]byte, error) {
		json.Unmarshal(p, &got)
		return json.Marshal(events.APIGatewayV2HTTPResponse{StatusCode: 200})
	})
	srv := httptest.NewServer(h)
	defer srv.Close()
	resp, err := http.PostForm(srv.URL+"/skycore/postbacks/abc", url.Values{"xml": {"<POSTBACK/>"}})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	raw, _ := base64.StdEncoding.DecodeString(got.Body)
	if !got.IsBase64Encoded || string(raw) != "xml=%3CPOSTBACK%2F%3E" || got.PathParameters["token"] != "abc" || got.RequestContext.HTTP.Method != "POST" {
		t.Errorf("event = %+v", got)
	}
	resp, _ = http.Get(srv.URL + "/other")
	if resp.StatusCode != 404 {
		t.Errorf("unrouted path: %d", resp.StatusCode)
	}
}
