package sim

import (
	"fmt"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// postTimeout posts doc with a client timeout; err is the transport error.
func postTimeout(t *testing.T, base, doc string, timeout time.Duration) (answer, int, error) {
	t.Helper()
	c := &http.Client{Timeout: timeout}
	resp, err := c.PostForm(base+APIPath, url.Values{"xml": {doc}})
	if err != nil {
		return answer{}, 0, err
	}
	if resp.StatusCode != http.StatusOK {
		resp.Body.Close()
		return answer{}, resp.StatusCode, nil
	}
	return readAnswer(t, resp), resp.StatusCode, nil
}

func lastRequest(t *testing.T, s *Server) Request {
	t.Helper()
	reqs := s.Requests()
	if len(reqs) == 0 {
		t.Fatal("no request recorded")
	}
	return reqs[len(reqs)-1]
}

func TestAcceptThenFail(t *testing.T) {
	tests := []struct {
		name      string
		fault     Fault
		doc       string
		wantErr   bool   // the caller sees a transport error
		wantCode  string // else the answer's code
		wantQueue bool   // Skycore queued the message
	}{
		{name: "accept-hang: caller times out", fault: Fault{Kind: "accept-hang"}, doc: valid(), wantErr: true, wantQueue: true},
		{name: "accept-hang with a delay past the timeout", fault: Fault{Kind: "accept-hang", Delay: Duration(time.Second)}, doc: valid(), wantErr: true, wantQueue: true},
		{name: "accept-hang shorter than the timeout", fault: Fault{Kind: "accept-hang", Delay: Duration(20 * time.Millisecond)}, doc: valid(), wantQueue: true},
		{name: "accept-reset: connection dropped", fault: Fault{Kind: "accept-reset"}, doc: valid(), wantErr: true, wantQueue: true},
		{name: "a refused request is answered at once", fault: Fault{Kind: "accept-hang"},
			doc: doc(el("ACTION", "sendSavedMMS"), el("API_KEY", key), el("TO", "+1774"), el("FROM", "60856"), el("MMSID", "1000")), wantCode: "E110"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			rc := &receiver{}
			cfg := Default()
			cfg.Faults = []Fault{tt.fault}
			s, base := startWithReceiver(t, cfg, rc)
			a, _, err := postTimeout(t, base, tt.doc, 300*time.Millisecond)
			if (err != nil) != tt.wantErr {
				t.Fatalf("post error = %v, want error %v", err, tt.wantErr)
			}
			if err == nil && a.Code != tt.wantCode {
				t.Errorf("code = %q, want %q", a.Code, tt.wantCode)
			}
			waitIdle(t, s)
			got := lastRequest(t, s)
			if got.Accepted != tt.wantQueue || (got.TrackingID != "") != tt.wantQueue {
				t.Errorf("request = %+v, want accepted %v", got, tt.wantQueue)
			}
			wantCodes := []string(nil)
			if tt.wantQueue {
				wantCodes = []string{"N101", "N102"}
				if got.Fault != tt.fault.Kind || s.Counts().Accepted["ref-1"] != 1 {
					t.Errorf("fault %q, counts %+v: want %s and one acceptance", got.Fault, s.Counts(), tt.fault.Kind)
				}
			}
			// Postbacks go out concurrently: their arrival order is not fixed.
			gotCodes := rc.codes()
			slices.Sort(gotCodes)
			if diff := cmp.Diff(wantCodes, gotCodes); diff != "" {
				t.Errorf("postbacks (-want +got):\n%s", diff)
			}
		})
	}
}

func TestOutage(t *testing.T) {
	tests := []struct {
		kind       string
		wantCode   string
		wantStatus int
		wantErr    string // part of the transport error
	}{
		{kind: "E503", wantCode: "E503", wantStatus: 200},
		{kind: "http503", wantStatus: 503},
		{kind: "reset", wantErr: "reset"},
		{kind: "refused", wantErr: "refused"},
	}
	for _, tt := range tests {
		t.Run(tt.kind, func(t *testing.T) {
			s, err := New(Default())
			if err != nil {
				t.Fatal(err)
			}
			base, err := s.Start("127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			if a, _, err := postTimeout(t, base, valid(), time.Second); err != nil || a.Status != "Success" {
				t.Fatalf("before the outage: %+v, %v", a, err)
			}
			if err := s.StartOutage(Outage{Kind: tt.kind, Length: Duration(400 * time.Millisecond)}); err != nil {
				t.Fatal(err)
			}
			time.Sleep(20 * time.Millisecond) // the port closes in its own goroutine
			var errs []string
			for range 3 {
				a, status, err := postTimeout(t, base, valid(), time.Second)
				switch {
				case tt.wantErr != "":
					if err == nil {
						t.Errorf("in the outage: %+v, %d; want an error", a, status)
					} else {
						errs = append(errs, err.Error())
					}
				case err != nil || status != tt.wantStatus || a.Code != tt.wantCode:
					t.Errorf("in the outage: %+v, %d, %v; want %d %q", a, status, err, tt.wantStatus, tt.wantCode)
				}
			}
			// A keep-alive connection opened before the port closed is
			// reset; the next dial is refused.
			if tt.wantErr != "" && (len(errs) == 0 || !strings.Contains(errs[len(errs)-1], tt.wantErr)) {
				t.Errorf("errors %q: want the last with %q", errs, tt.wantErr)
			}
			time.Sleep(450 * time.Millisecond)
			if a, _, err := postTimeout(t, base, valid(), time.Second); err != nil || a.Status != "Success" {
				t.Errorf("after the outage: %+v, %v", a, err)
			}
			if c := s.Counts(); c.Accepted["ref-1"] != 2 {
				t.Errorf("accepted = %d, want 2 (none in the outage)", c.Accepted["ref-1"])
			}
		})
	}
	t.Run("config window", func(t *testing.T) {
		cfg := Default()
		cfg.Outages = []Outage{{Kind: "E503", Start: Duration(150 * time.Millisecond), Length: Duration(150 * time.Millisecond)}}
		_, base := start(t, cfg)
		var codes []string
		for range 3 { // at about 0, 200 and 400 ms
			codes = append(codes, postXML(t, base, valid()).Code)
			time.Sleep(200 * time.Millisecond)
		}
		if diff := cmp.Diff([]string{"", "E503", ""}, codes); diff != "" {
			t.Errorf("codes (-want +got):\n%s", diff)
		}
	})
	t.Run("bad outage", func(t *testing.T) {
		cfg := Default()
		cfg.Outages = []Outage{{Kind: "meteor", Length: Duration(time.Second)}}
		if _, err := New(cfg); err == nil {
			t.Error("unknown outage kind accepted")
		}
	})
}

func TestOmitClientReference(t *testing.T) {
	for _, rate := range []float64{0, 1} {
		t.Run(map[float64]string{0: "never", 1: "always"}[rate], func(t *testing.T) {
			rc := &receiver{}
			cfg := Default()
			cfg.OmitClientReferenceRate = rate
			s, base := startWithReceiver(t, cfg, rc)
			a := postXML(t, base, valid())
			waitIdle(t, s)
			want := map[float64]string{0: "ref-1", 1: ""}[rate]
			if len(rc.got) != 2 {
				t.Fatalf("got %d postbacks, want 2", len(rc.got))
			}
			for _, g := range rc.got {
				if _, has := g["CLIENT_REFERENCE"]; g["CLIENT_REFERENCE"] != want || has != (want != "") || g["TRACKINGID"] != a.TrackingID {
					t.Errorf("postback %v: want CLIENT_REFERENCE %q and tracking id %s", g, want, a.TrackingID)
				}
			}
			for _, p := range s.Postbacks() {
				if p.OmittedClientReference != (rate == 1) {
					t.Errorf("attempt %+v: omitted flag", p)
				}
			}
		})
	}
	t.Run("a share", func(t *testing.T) {
		rc := &receiver{}
		cfg := Default()
		cfg.OmitClientReferenceRate = 0.3
		cfg.Scenarios = Scenarios{Default: ScenarioNoReceipt}
		s, base := startWithReceiver(t, cfg, rc)
		for range 100 {
			postXML(t, base, valid())
		}
		waitIdle(t, s)
		omitted := 0
		for _, g := range rc.got {
			if g["CLIENT_REFERENCE"] == "" {
				omitted++
			}
		}
		if omitted < 15 || omitted > 45 {
			t.Errorf("rate 0.3 omitted %d of 100", omitted)
		}
	})
}

// orderReceiver notes, for each postback, whether the send's answer had
// already reached the caller.
type orderReceiver struct {
	answered atomic.Bool
	mu       sync.Mutex
	before   []string // codes received before the answer
	after    []string
}

func (o *orderReceiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	b := make([]byte, 4096)
	n, _ := r.Body.Read(b)
	tree, err := parseTree(b[:n])
	if err != nil {
		w.WriteHeader(400)
		return
	}
	code, _ := tree.text("CODE")
	o.mu.Lock()
	if o.answered.Load() {
		o.after = append(o.after, code)
	} else {
		o.before = append(o.before, code)
	}
	o.mu.Unlock()
}

func TestEarlyPostback(t *testing.T) {
	tests := []struct {
		rate       float64
		wantBefore []string
		wantAfter  []string
	}{
		{rate: 1, wantBefore: []string{"N101"}, wantAfter: []string{"N102"}},
		{rate: 0, wantAfter: []string{"N101", "N102"}},
	}
	for _, tt := range tests {
		t.Run(map[float64]string{0: "off", 1: "on"}[tt.rate], func(t *testing.T) {
			o := &orderReceiver{}
			recv := &http.Server{Handler: o}
			l, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			go recv.Serve(l)
			defer recv.Close()
			cfg := Default()
			cfg.PostbackURL = "http://" + l.Addr().String()
			cfg.PostbackDelay = Duration(100 * time.Millisecond)
			cfg.EarlyPostbackRate = tt.rate
			s, base := start(t, cfg)
			a := postXML(t, base, valid())
			o.answered.Store(true)
			if a.Status != "Success" {
				t.Fatalf("answer %+v", a)
			}
			waitIdle(t, s)
			if diff := cmp.Diff(tt.wantBefore, o.before); diff != "" {
				t.Errorf("before the answer (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tt.wantAfter, o.after); diff != "" {
				t.Errorf("after the answer (-want +got):\n%s", diff)
			}
			early := 0
			for _, p := range s.Postbacks() {
				if p.BeforeAnswer {
					early++
				}
			}
			if early != len(tt.wantBefore) {
				t.Errorf("%d attempts marked BeforeAnswer, want %d", early, len(tt.wantBefore))
			}
		})
	}
}

func TestCarriers(t *testing.T) {
	// Numbers that land on two different carriers.
	var quiet, loud string
	for i := 0; quiet == "" || loud == ""; i++ {
		to := fmt.Sprintf("1774555%04d", i)
		if CarrierOf(to) == Carriers()[0] && quiet == "" {
			quiet = to
		} else if CarrierOf(to) != Carriers()[0] && loud == "" {
			loud = to
		}
	}
	tests := []struct {
		name   string
		cfg    func(*Config)
		to     string
		scen   Scenario
		codes  []string
		silent bool
	}{
		{name: "no receipt: N101 only", cfg: func(c *Config) { c.NoReceiptCarriers = Carriers()[:1] }, to: quiet, codes: []string{"N101"}},
		{name: "no receipt: E101 still sent", cfg: func(c *Config) { c.NoReceiptCarriers = Carriers()[:1] }, to: quiet, scen: ScenarioFailed, codes: []string{"E101"}},
		{name: "no receipt: other carriers unaffected", cfg: func(c *Config) { c.NoReceiptCarriers = Carriers()[:1] }, to: loud, codes: []string{"N101", "N102"}},
		{name: "silent: nothing at all", cfg: func(c *Config) { c.SilentCarriers = Carriers()[:1] }, to: quiet, codes: nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rc := &receiver{}
			cfg := Default()
			tt.cfg(&cfg)
			if tt.scen != "" {
				cfg.Scenarios = Scenarios{Default: tt.scen}
			}
			s, base := startWithReceiver(t, cfg, rc)
			a := postXML(t, base, doc(el("ACTION", "sendSavedMMS"), el("API_KEY", key), el("TO", tt.to), el("FROM", "60856"), el("MMSID", "1000")))
			if a.Status != "Success" {
				t.Fatalf("answer %+v", a)
			}
			waitIdle(t, s)
			// Postbacks go out concurrently: compare them as sets.
			want, got := slices.Sorted(slices.Values(tt.codes)), rc.codes()
			slices.Sort(got)
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("postbacks (-want +got):\n%s", diff)
			}
			if got := lastRequest(t, s); got.Carrier != CarrierOf(tt.to) || !got.Accepted {
				t.Errorf("request = %+v", got)
			}
		})
	}
}

func TestOutageEndpoint(t *testing.T) {
	_, base := start(t, Default())
	put(t, base+"/_sim/outage", `{"kind":"E503","length":"300ms"}`, http.StatusNoContent)
	if a := postXML(t, base, valid()); a.Code != "E503" {
		t.Errorf("in the outage: %+v", a)
	}
	put(t, base+"/_sim/outage", `{"kind":"meteor","length":"1s"}`, http.StatusBadRequest)
	var reqs []Request
	getJSON(t, base+"/_sim/requests", &reqs)
	if len(reqs) != 1 || reqs[0].Accepted || reqs[0].Fault != "outage-E503" {
		t.Errorf("requests = %+v", reqs)
	}
	time.Sleep(400 * time.Millisecond)
	if a := postXML(t, base, valid()); a.Status != "Success" {
		t.Errorf("after the outage: %+v", a)
	}
	getJSON(t, base+"/_sim/requests", &reqs)
	if len(reqs) != 2 || !reqs[1].Accepted {
		t.Errorf("requests = %+v", reqs)
	}
}
