package soak

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/mmsgate/mmsgate/internal/sim"
	"github.com/mmsgate/mmsgate/pkg/delivery"
)

// TestCheckCancels: each documented way a cancel can be wrong is found,
// and the legitimate outcomes are not.
func TestCheckCancels(t *testing.T) {
	t0 := time.Date(2026, 12, 4, 12, 0, 0, 0, time.UTC)
	canceled := map[string]bool{delivery.Canceled: true}
	tests := []struct {
		name    string
		kinds   map[string]bool
		calls   []sim.Request
		log     string // a sender log line
		wantBad int
	}{
		{name: "canceled, never called", kinds: canceled},
		{name: "canceled after calls that surely failed", kinds: canceled,
			calls: []sim.Request{{Time: t0.Add(-time.Second), Code: "E503", Fault: "E503"}, {Time: t0.Add(-time.Second), Fault: "outage-refused"}}},
		{name: "canceled though Skycore accepted", kinds: canceled, calls: []sim.Request{{Time: t0.Add(-time.Second), Accepted: true}}, wantBad: 1},
		{name: "canceled after a call in doubt", kinds: canceled, calls: []sim.Request{{Time: t0.Add(-time.Second), Fault: "hang"}}, wantBad: 1},
		{name: "called after its canceled event", kinds: canceled, calls: []sim.Request{{Time: t0.Add(time.Millisecond), Code: "E503"}}, wantBad: 1},
		{name: "canceled and accepted", kinds: map[string]bool{delivery.Canceled: true, delivery.Accepted: true}, wantBad: 1},
		{name: "accepted, its cancel refused as claimed", kinds: map[string]bool{delivery.Accepted: true},
			log: `{"time":"2026-12-04T12:00:00Z","level":"WARN","msg":"x: cancel refused (CLAIMED); nothing changed","id":"x","state":"INPROGRESS","class":"cancelrefused"}`},
		{name: "cancel refused while scheduled", kinds: map[string]bool{delivery.Accepted: true},
			log: `START RequestId: 1` + "\n" + `{"timestamp":"2026-12-04T12:00:00.1Z","level":"WARN","message":"x: cancel refused (INDOUBT); nothing changed","version":"0.3.0-dev","messageId":"m","id":"x","state":"SCHEDULED","class":"cancelrefused","requestId":"r"}`, wantBad: 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var logs strings.Builder
			tap := &cancelTap{next: &logs}
			if tt.log != "" {
				fmt.Fprintln(tap, tt.log)
			}
			if logs.String() != tt.log+"\n" && tt.log != "" {
				t.Errorf("the tap changed the logs: %q", logs.String())
			}
			r := &Report{cancels: tap}
			at := map[string]time.Time{}
			if tt.kinds[delivery.Canceled] {
				at["x"] = t0
			}
			v := r.checkCancels([]string{"x"}, map[string]map[string]bool{"x": tt.kinds}, at, map[string][]sim.Request{"x": tt.calls})
			if r.CancelViolations != tt.wantBad || len(v) != tt.wantBad {
				t.Errorf("cancel violations %d, findings %q; want %d", r.CancelViolations, v, tt.wantBad)
			}
			if want := map[bool]int{true: 1}[tt.kinds[delivery.Canceled]]; r.Canceled != want {
				t.Errorf("canceled = %d, want %d", r.Canceled, want)
			}
		})
	}
}

// TestCheckExpiresAt: a call at or after expiresAt is counted; an id
// Skycore never accepted must end expired EXPIRES_AT, not before its
// expiresAt.
func TestCheckExpiresAt(t *testing.T) {
	at := time.Date(2026, 12, 4, 12, 0, 0, 0, time.UTC)
	expired := delivery.Event{ID: "x", Event: delivery.Expired, Code: "EXPIRES_AT", RecordedAt: delivery.Stamp(at.Add(time.Millisecond))}
	tests := []struct {
		name              string
		calls             []sim.Request
		end               delivery.Event
		wantSent, wantBad int
		wantExpired       int
	}{
		{name: "failed calls before it, expired at it", calls: []sim.Request{{Time: at.Add(-3 * time.Second), Code: "E503"}}, end: expired, wantExpired: 1},
		{name: "a call at expiresAt", calls: []sim.Request{{Time: at, Code: "E503"}}, end: expired, wantSent: 1, wantBad: 1, wantExpired: 1},
		{name: "accepted after expiresAt", calls: []sim.Request{{Time: at.Add(time.Second), Accepted: true}},
			end: delivery.Event{ID: "x", Event: delivery.Accepted}, wantSent: 1, wantBad: 1},
		{name: "accepted before expiresAt", calls: []sim.Request{{Time: at.Add(-time.Second), Accepted: true}}, end: delivery.Event{ID: "x", Event: delivery.Accepted}},
		{name: "accepted by Skycore, ended expired", calls: []sim.Request{{Time: at.Add(-time.Second), Accepted: true}}, end: expired, wantBad: 1},
		{name: "expired with another code", end: delivery.Event{ID: "x", Event: delivery.Expired, Code: "E503"}, wantBad: 1},
		{name: "expired before its expiresAt", end: delivery.Event{ID: "x", Event: delivery.Expired, Code: "EXPIRES_AT", RecordedAt: delivery.Stamp(at.Add(-time.Second))},
			wantBad: 1, wantExpired: 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := &Report{expiresAt: map[string]time.Time{"x": at}}
			v := r.checkExpiresAt(map[string]string{"x": "expiresat"}, map[string][]sim.Request{"x": tt.calls}, map[string]delivery.Event{"x": tt.end})
			if r.SentAfterExpiresAt != tt.wantSent || len(v) != tt.wantBad || r.ExpiredAtExpiresAt != tt.wantExpired {
				t.Errorf("sent after %d, expired %d, findings %q; want %d, %d, %d findings", r.SentAfterExpiresAt, r.ExpiredAtExpiresAt, v, tt.wantSent, tt.wantExpired, tt.wantBad)
			}
		})
	}
}

// TestCheckLongTracking: a Success with a tracking id over 2,048 bytes
// must end accepted NO_TRACKINGID without the id.
func TestCheckLongTracking(t *testing.T) {
	long := sim.Request{Fault: "accept-longtid", Accepted: true, TrackingID: strings.Repeat("T", sim.LongTrackingIDBytes)}
	for _, tt := range []struct {
		end  delivery.Event
		want int
	}{
		{delivery.Event{Event: delivery.Accepted, Code: "NO_TRACKINGID"}, 0},
		{delivery.Event{Event: delivery.Accepted, TrackingID: long.TrackingID}, 1},
		{delivery.Event{Event: delivery.Expired, Code: "EXPIRES_AT"}, 1},
	} {
		r := &Report{}
		if v := r.checkLongTracking(map[string][]sim.Request{"x": {long}}, map[string]delivery.Event{"x": tt.end}); len(v) != tt.want {
			t.Errorf("%s %s: findings %q, want %d", tt.end.Event, tt.end.Code, v, tt.want)
		}
	}
}

// TestJudgeExpiry: an id that expired after few calls outside the outage
// is a finding (the window is too short); after enough faulted ones it is
// counted as bad luck.
func TestJudgeExpiry(t *testing.T) {
	outage := sim.Request{Fault: "outage-E503"}
	stray := sim.Request{Fault: "http500"}
	for _, tt := range []struct {
		name     string
		calls    []sim.Request
		finding  bool
		badLucks int
	}{
		{"only the outage", []sim.Request{outage, outage, outage}, true, 0},
		{"two strays after it", []sim.Request{outage, stray, stray}, true, 0},
		{"enough strays after it", []sim.Request{outage, stray, {Fault: "reset"}, {Fault: "E113", Throttled: true}}, false, 1},
	} {
		t.Run(tt.name, func(t *testing.T) {
			r := &Report{}
			if f := r.judgeExpiry("x", tt.calls); (f != "") != tt.finding || r.ExpiredByStrayFaults != tt.badLucks {
				t.Errorf("finding %q, counted %d; want finding %v, counted %d", f, r.ExpiredByStrayFaults, tt.finding, tt.badLucks)
			}
		})
	}
}
