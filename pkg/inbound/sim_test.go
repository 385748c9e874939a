package inbound_test

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/mmsgate/mmsgate/internal/sim"
	"github.com/mmsgate/mmsgate/pkg/inbound"
	"github.com/mmsgate/mmsgate/pkg/skycore"
)

// TestSimulatorSTOP: the simulator's inbound postbacks, read by
// skycore.ParseInbound and handled here, turn a STOP into one inbound and
// one optout event and an entry that refuses the number from that code,
// while the simulator answers E114 for it; duplicates Skycore sends (the
// simulator's duplicate rate) publish nothing more; START undoes both.
func TestSimulatorSTOP(t *testing.T) {
	r := newRig(t)
	var mu sync.Mutex
	n := 0
	recv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		body, _ := io.ReadAll(req.Body)
		m, err := skycore.ParseInbound(body)
		if err != nil {
			t.Errorf("ParseInbound: %v\n%s", err, body)
			return
		}
		mu.Lock()
		n++
		owner := "inv-" + string(rune('a'+n))
		mu.Unlock()
		res, err := inbound.Handle(req.Context(), r.st, r.lists, m, owner, time.Now().Add(time.Minute), r.publish)
		switch {
		case err != nil:
			w.WriteHeader(http.StatusInternalServerError)
		case res.Outcome == inbound.Busy:
			w.WriteHeader(http.StatusServiceUnavailable)
		}
	}))
	defer recv.Close()
	cfg := sim.Default()
	cfg.PostbackURL = recv.URL
	cfg.DuplicateRate = 1 // every postback is sent twice
	cfg.RetryInterval = sim.Duration(10 * time.Millisecond)
	s, err := sim.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	wait := func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := s.WaitIdle(ctx); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := s.SendMO(sim.MO{From: "17743199144", To: "60856", Text: "STOP"}); err != nil {
		t.Fatal(err)
	}
	wait()
	if !s.OptedOut("17743199144", "60856") || !r.refused(t, "17743199144", "60856") {
		t.Error("after STOP: not opted out on both sides")
	}
	if r.refused(t, "17743199144", "70000") {
		t.Error("another code is refused")
	}
	if _, err := s.SendMO(sim.MO{From: "17743199144", To: "60856", Text: "Start"}); err != nil {
		t.Fatal(err)
	}
	wait()
	if s.OptedOut("17743199144", "60856") || r.refused(t, "17743199144", "60856") {
		t.Error("after START: still opted out")
	}
	if got := r.kinds(); !cmp.Equal(got, []string{"inbound", "optout", "inbound", "optin"}) {
		t.Errorf("events = %v (the simulator sent each postback twice)", got)
	}
	if len(s.Postbacks()) != 4 {
		t.Errorf("postback attempts = %d, want 4 (two messages, each sent twice)", len(s.Postbacks()))
	}
}
