package rehearsal

import (
	"encoding/json"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/mmsgate/mmsgate/pkg/delivery"
)

// busBody is a message as EventBridge's rule puts it on its SQS target:
// the envelope, with the event as detail.
func busBody(t *testing.T, source, detailType string, e delivery.Event) string {
	t.Helper()
	b, err := json.Marshal(map[string]any{"version": "0", "id": "4f5c", "detail-type": detailType, "source": source,
		"account": Account, "region": Region, "resources": []string{}, "detail": e})
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestBusEventsAgainstTheQueue: the rule's queue must hold exactly the
// delivery-events queue's events of the run's requests, the same content,
// each with source mmsgate and its kind as detail-type.
func TestBusEventsAgainstTheQueue(t *testing.T) {
	accepted := delivery.Event{ID: "r", Event: "accepted", TrackingID: "T1", To: "17743199144", From: "60856", RecordedAt: "2026-12-04T19:00:00.000Z"}
	delivered := delivery.Event{ID: "r", Event: "delivered", TrackingID: "T1", Status: "DELIVERED", RecordedAt: "2026-12-04T19:00:01.000Z"}
	other := delivery.Event{ID: "someone-else", Event: "accepted", TrackingID: "T9"}
	altered := delivered
	altered.Status = "UNDELIVERED"
	queue := []delivery.Event{accepted, delivered, other, delivered} // a duplicate publication
	ids := map[string]bool{"r": true}
	for _, c := range []struct {
		name           string
		bus            []string
		missing, extra []string
		err            string
	}{
		{name: "every event, one twice, another request's ignored",
			bus: []string{busBody(t, "mmsgate", "delivered", delivered), busBody(t, "mmsgate", "accepted", accepted),
				busBody(t, "mmsgate", "delivered", delivered), busBody(t, "mmsgate", "accepted", other)}},
		{name: "one not on the bus", bus: []string{busBody(t, "mmsgate", "accepted", accepted)}, missing: []string{"r:delivered"}},
		{name: "nothing on the bus", missing: []string{"r:accepted", "r:delivered"}},
		{name: "changed on the way", bus: []string{busBody(t, "mmsgate", "accepted", accepted), busBody(t, "mmsgate", "delivered", altered)},
			missing: []string{"r:delivered"}, extra: []string{"r:delivered"}},
		{name: "wrong source", bus: []string{busBody(t, "someone", "accepted", accepted)}, err: `source "someone"`},
		{name: "detail-type not the kind", bus: []string{busBody(t, "mmsgate", "delivered", accepted)}, err: `detail-type "delivered" for a "accepted" event`},
		{name: "wrong source on another request's event", bus: []string{busBody(t, "x", "accepted", other)}, err: `source "x"`},
		{name: "not an envelope", bus: []string{`{"detail":"accepted"}`}, err: "bus message"},
	} {
		t.Run(c.name, func(t *testing.T) {
			got := eventSet{}
			err := addBusMessages(got, c.bus, ids)
			if c.err != "" {
				if err == nil || !strings.Contains(err.Error(), c.err) {
					t.Fatalf("error %v, want one saying %q", err, c.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			missing, extra := diff(queueEvents(queue, ids), got)
			if d := cmp.Diff(c.missing, missing); d != "" {
				t.Errorf("missing (-want +got):\n%s", d)
			}
			if d := cmp.Diff(c.extra, extra); d != "" {
				t.Errorf("extra (-want +got):\n%s", d)
			}
		})
	}
}

// TestBusCallers: each function whose environment names the bus must have
// put an event on that bus, not another one.
func TestBusCallers(t *testing.T) {
	bus := busARN("apps")
	put := func(fn, resource string) Call {
		return Call{Function: fn, Action: "events:PutEvents", Resource: resource}
	}
	calls := map[string][]Call{
		"A": {{Function: "A", Action: "sqs:SendMessage"}, put("A", bus)},
		"B": {put("B", busARN("default"))},
		"C": {callOf("C", "PutEvents", []byte(`{"Entries":[{"EventBusName":"apps","Source":"mmsgate"}]}`))},
	}
	if n, err := busCallers(calls, []string{"A", "C"}, bus); n != 2 || err != nil {
		t.Errorf("A and C put on the bus: %d, %v", n, err)
	}
	if _, err := busCallers(calls, []string{"A", "B", "D"}, bus); err == nil || !strings.HasPrefix(err.Error(), "B, D: EVENT_BUS_NAME set and no event put on "+bus) {
		t.Errorf("B (another bus) and D (none): %v", err)
	}
	if _, err := busCallers(calls, nil, bus); err == nil {
		t.Error("no function naming the bus passed")
	}
}

// TestPutEventsAgainstTheRole: a PutEvents call is in its role only on the
// bus the role's statement names (the template's EventBus statement,
// there only with EventBusName set).
func TestPutEventsAgainstTheRole(t *testing.T) {
	statement := map[string]any{"Fn::If": []any{"HasEventBus", map[string]any{"Sid": "EventBus", "Effect": "Allow", "Action": "events:PutEvents",
		"Resource": map[string]any{"Fn::Sub": "arn:${AWS::Partition}:events:${AWS::Region}:${AWS::AccountId}:event-bus/${EventBusName}"}},
		map[string]any{"Ref": "AWS::NoValue"}}}
	tpl := &Template{
		Parameters: map[string]map[string]any{"EventBusName": {"Default": ""}},
		Conditions: map[string]any{"HasEventBus": map[string]any{"Fn::Not": []any{map[string]any{"Fn::Equals": []any{map[string]any{"Ref": "EventBusName"}, ""}}}}},
		Resources: map[string]*Resource{"FRole": {Type: "AWS::IAM::Role", Properties: map[string]any{"Policies": []any{
			map[string]any{"PolicyName": "events", "PolicyDocument": map[string]any{"Statement": []any{
				map[string]any{"Sid": "Logs", "Effect": "Allow", "Action": "logs:PutLogEvents", "Resource": "*"}, statement}}}}}}},
	}
	onto := func(bus string) Call {
		return callOf("F", "PutEvents", []byte(`{"Entries":[{"EventBusName":"`+bus+`","Source":"mmsgate","DetailType":"accepted","Detail":"{}"}]}`))
	}
	for _, c := range []struct {
		param, bus string
		outside    bool
	}{
		{"apps", "apps", false},
		{"apps", busARN("apps"), false}, // the bus named by its ARN
		{"apps", "other", true},
		{"apps", "", true}, // the default bus
		{"", "apps", true}, // EventBusName unset: no grant
	} {
		d := &Deployment{Full: tpl, Name: "st", Params: map[string]string{"EventBusName": c.param}, ids: map[string]string{"FRole": "st-FRole-X"}}
		v, err := d.checkRoles(t.Context(), map[string][]Call{"F": {onto(c.bus)}})
		if err != nil {
			t.Fatal(err)
		}
		if got := len(v.Outside) == 1 && strings.Contains(v.Outside[0], "events:PutEvents on ") && strings.Contains(v.Outside[0], "not allowed by FRole"); got != c.outside {
			t.Errorf("EventBusName %q, PutEvents on %q: outside %v (%v), want %v", c.param, c.bus, got, v.Outside, c.outside)
		}
		if !c.outside && slices.ContainsFunc(v.Unused, func(u string) bool { return strings.Contains(u, "EventBus") }) {
			t.Errorf("the EventBus grant used and listed unused: %v", v.Unused)
		}
	}
}

// TestSummaryWithBus: the summary line keeps its form and says what it
// checked about the bus; without a bus it says nothing of one.
func TestSummaryWithBus(t *testing.T) {
	r := Result{ByEngine: make([]string, 40), ByUs: make([]string, 12), Checked: make([]string, 3), Verdict: Verdict{Unused: []string{"x"}}}
	const without = "rehearsal: stack CREATE_COMPLETE (40 by the engine, 12 by the rehearsal, 3 checked but not created), end to end ok, update ok, delete ok, calls outside role 0, unused grants 1"
	if got := r.Summary(); got != without {
		t.Errorf("without a bus:\n%s\nwant\n%s", got, without)
	}
	r.Bus, r.BusEvents, r.BusCallers = "mmsgate-apps", 18, 3
	want := "rehearsal: stack CREATE_COMPLETE (40 by the engine, 12 by the rehearsal, 3 checked but not created), end to end ok, " +
		"event bus ok (mmsgate-apps: 18 events through a rule to SQS, each as on the queue, source mmsgate, detail-type its kind; PutEvents of 3 functions in their roles), " +
		"update ok, delete ok, calls outside role 0, unused grants 1"
	if got := r.Summary(); got != want {
		t.Errorf("with a bus:\n%s\nwant\n%s", got, want)
	}
}
