package sim

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// The window slides: N admissions in any one second, whatever the caller,
// and refused calls do not use it up.
func TestThroughputWindow(t *testing.T) {
	t0 := time.Date(2026, 12, 4, 12, 0, 0, 0, time.UTC)
	ms := func(n int) time.Time { return t0.Add(time.Duration(n) * time.Millisecond) }
	tests := []struct {
		name  string
		limit float64
		at    []int // call times, ms
		want  []string
	}{
		{"off", 0, []int{0, 0, 0}, []string{"", "", ""}},
		{"three a second", 3, []int{0, 10, 20, 30, 999, 1000, 1005, 1011, 1020},
			[]string{"", "", "", "E113", "E113", "", "E113", "", ""}}, // 1000: 0 left the window; 1011: 10 did
		{"evenly spaced at the limit", 4, []int{0, 250, 500, 750, 1000, 1250, 1500, 1750}, []string{"", "", "", "", "", "", "", ""}},
		{"refused calls do not count", 2, []int{0, 1, 2, 3, 4, 1001}, []string{"", "", "E113", "E113", "E113", ""}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			th := newThroughput(tt.limit, 0)
			var got []string
			for _, at := range tt.at {
				got = append(got, th.admit(ms(at), "k"))
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("answers (-want +got):\n%s", diff)
			}
		})
	}
}

func TestThroughputInterval(t *testing.T) {
	t0 := time.Date(2026, 12, 4, 12, 0, 0, 0, time.UTC)
	th := newThroughput(0, 2*time.Second)
	got := []string{
		th.admit(t0, "a"),
		th.admit(t0.Add(time.Second), "a"), // too soon
		th.admit(t0.Add(time.Second), "b"), // another key
		th.admit(t0.Add(2*time.Second), "a"),
	}
	if diff := cmp.Diff([]string{"", "E106", "", ""}, got); diff != "" {
		t.Errorf("answers (-want +got):\n%s", diff)
	}
	if r := th.report(); r.E106 != 1 || r.Admitted != 3 || r.Calls != 4 {
		t.Errorf("report %+v", r)
	}
}

// Over HTTP: the calls beyond the limit are E113 with Skycore's wording,
// listed as throttled, counted, never sent (no tracking id, no postback).
func TestRateLimitOverHTTP(t *testing.T) {
	cfg := Default()
	cfg.RateLimit = 3
	s, base := start(t, cfg)
	var codes []string
	for range 5 {
		codes = append(codes, postXML(t, base, valid()).Code)
	}
	// Five calls well inside one second (a slow machine could spread them
	// over more: then fewer are refused, never more).
	refused := 0
	for _, c := range codes {
		switch c {
		case "":
		case "E113":
			refused++
		default:
			t.Fatalf("unexpected code %q", c)
		}
	}
	if refused == 0 || refused > 2 {
		t.Fatalf("codes %v: want 3 accepted and 2 E113 within a second", codes)
	}
	var th Throughput
	getJSON(t, base+"/_sim/throughput", &th)
	if th.Limit != 3 || th.Calls != 5 || th.E113 != refused || th.Admitted != 5-refused {
		t.Errorf("throughput %+v, want 5 calls, %d E113", th, refused)
	}
	for _, r := range s.Requests() {
		if r.Code == "E113" && (!r.Throttled || r.Accepted || r.TrackingID != "" ||
			r.Info != "Set throughput exceeded for this API action. API call rejected.") {
			t.Errorf("refused call recorded as %+v", r)
		}
	}
	s.Reset()
	if th := s.Throughput(); th.Calls != 0 || th.E113 != 0 {
		t.Errorf("after reset: %+v", th)
	}
}
