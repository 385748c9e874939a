package sim

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/mmsgate/mmsgate/pkg/skycore"
)

func sendFrom(t *testing.T, base, from string) answer {
	t.Helper()
	return postXML(t, base, doc(el("ACTION", "sendSavedMMS"), el("API_KEY", key), el("TO", "17743199144"), el("FROM", from), el("MMSID", "1000")))
}

func TestMOPostbacks(t *testing.T) {
	var bodies []string
	rc := &receiver{}
	cfg := Default()
	s, _ := startWithReceiver(t, cfg, rc)
	res, err := s.SendMO(MO{From: "17743199144", To: "60856", Text: "Hello & <you>"})
	if err != nil {
		t.Fatal(err)
	}
	bodies = append(bodies, res.Body)
	mms, err := s.SendMO(MO{From: "17743199144", To: "60856", Subject: "Receipt", Files: []string{"https://x/1.txt", "https://x/2.jpg?a=1&b=2"}})
	if err != nil {
		t.Fatal(err)
	}
	bodies = append(bodies, mms.Body)
	waitIdle(t, s)
	if got := rc.codes(); !cmp.Equal(got, []string{"N211", "N401"}) && !cmp.Equal(got, []string{"N401", "N211"}) {
		t.Fatalf("posted codes = %v", got)
	}
	// mmsgate's parser reads what the simulator posts.
	sms, err := skycore.ParseInbound([]byte(bodies[0]))
	if err != nil {
		t.Fatal(err)
	}
	if sms.Code != "N211" || sms.Origin != "SMS_MO" || sms.From != "17743199144" || sms.To != "60856" || sms.Text != "Hello & <you>" ||
		sms.TransactionID != res.ID || res.Code != "N211" || sms.Received == "" {
		t.Errorf("SMS MO = %+v (result %+v)", sms, res)
	}
	if _, ok := sms.Time(); !ok {
		t.Errorf("RECEIVED %q does not parse", sms.Received)
	}
	if len(strings.Split(res.ID, "-")) != 4 {
		t.Errorf("TRANSACTIONID %q is not shaped like 511XG-02294-192SA-482H8", res.ID)
	}
	m, err := skycore.ParseInbound([]byte(bodies[1]))
	if err != nil {
		t.Fatal(err)
	}
	if m.Code != "N401" || m.Origin != "MMS_MO" || m.Subject != "Receipt" || m.Keyword != "all" || m.TrackingID != mms.ID ||
		!strings.HasPrefix(mms.ID, "MMS_MO_") || !cmp.Equal(m.Files, []string{"https://x/1.txt", "https://x/2.jpg?a=1&b=2"}) || m.SPID == "" {
		t.Errorf("MMS MO = %+v (result %+v)", m, mms)
	}
	pbs := s.Postbacks()
	if len(pbs) != 2 || !pbs[0].Accepted {
		t.Errorf("postback attempts = %+v", pbs)
	}
}

// TestMOStop: after a STOP to a code, sends to the number from that code
// answer E114, sends from another code are accepted, until a START.
func TestMOStop(t *testing.T) {
	cfg := Default()
	cfg.Accounts[0].From["70000"] = "1"
	s, base := startWithReceiver(t, cfg, &receiver{})
	if a := sendFrom(t, base, "60856"); a.Status != "Success" {
		t.Fatalf("before STOP: %+v", a)
	}
	steps := []struct {
		text              string
		optedOut          bool
		from60856, from70 string // "" success, else the code
	}{
		{"Stop.", true, "E114", ""},
		{"hello again", true, "E114", ""},
		{"don't stop", true, "E114", ""},
		{"start", false, "", ""},
		{"STOPALL", true, "E114", ""},
		{"UNSTOP!", false, "", ""},
	}
	for _, st := range steps {
		res, err := s.SendMO(MO{From: "17743199144", To: "60856", Text: st.text})
		if err != nil {
			t.Fatal(err)
		}
		if res.OptedOut != st.optedOut || s.OptedOut("17743199144", "60856") != st.optedOut {
			t.Errorf("after %q: optedOut = %v, want %v", st.text, res.OptedOut, st.optedOut)
		}
		if a := sendFrom(t, base, "60856"); a.Code != st.from60856 {
			t.Errorf("after %q: send from 60856 = %+v, want code %q", st.text, a, st.from60856)
		} else if a.Code == "E114" && a.To != "17743199144" {
			t.Errorf("E114 answer without TO: %+v", a)
		}
		if a := sendFrom(t, base, "70000"); a.Code != st.from70 {
			t.Errorf("after %q: send from 70000 = %+v", st.text, a)
		}
	}
	// An MMS whose subject is STOP is not Skycore's keyword.
	if res, _ := s.SendMO(MO{From: "17743199144", To: "60856", Subject: "STOP"}); res.OptedOut {
		t.Error("an MMS subject opted out")
	}
	waitIdle(t, s)
	s.SendMO(MO{From: "17743199144", To: "60856", Text: "STOP"})
	s.Reset()
	if s.OptedOut("17743199144", "60856") {
		t.Error("Reset kept the opt-out")
	}
}

func TestMOHTTP(t *testing.T) {
	calls := 0 // under the receiver's lock
	rc := &receiver{fail: func(int) int {
		if calls++; calls == 1 {
			return http.StatusServiceUnavailable // the first attempt fails: retried
		}
		return http.StatusOK
	}}
	s, base := startWithReceiver(t, Default(), rc)
	post := func(body string) (*http.Response, MOResult) {
		t.Helper()
		resp, err := http.Post(base+"/_sim/mo", "application/json", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var r MOResult
		if resp.StatusCode == http.StatusAccepted {
			if err := json.NewDecoder(resp.Body).Decode(&r); err != nil {
				t.Fatal(err)
			}
		}
		return resp, r
	}
	resp, r := post(`{"from": "17743199144", "to": "60856", "text": "STOP"}`)
	if resp.StatusCode != http.StatusAccepted || r.Code != "N211" || !r.OptedOut || r.ID == "" {
		t.Fatalf("POST /_sim/mo = %d %+v", resp.StatusCode, r)
	}
	waitIdle(t, s)
	pbs := s.Postbacks()
	if len(pbs) != 2 || pbs[0].Accepted || !pbs[1].Accepted || pbs[1].TrackingID != r.ID || pbs[1].Code != "N211" {
		t.Errorf("attempts = %+v; want a failed one, then its retry accepted", pbs)
	}
	got, err := http.Get(base + "/_sim/optouts")
	if err != nil {
		t.Fatal(err)
	}
	var list []string
	json.NewDecoder(got.Body).Decode(&list)
	got.Body.Close()
	if !cmp.Equal(list, []string{"17743199144@60856"}) {
		t.Errorf("GET /_sim/optouts = %v", list)
	}
	for _, bad := range []string{
		`{"from": "+17743199144", "to": "60856", "text": "x"}`,
		`{"from": "17743199144", "to": "ACME", "text": "x"}`,
		`{"from": "17743199144", "to": "60856", "text": "x", "subject": "y"}`,
		`{"from": "17743199144", "to": "60856", "txt": "x"}`,
		`not json`,
	} {
		if resp, _ := post(bad); resp.StatusCode != http.StatusBadRequest {
			t.Errorf("POST %s = %d, want 400", bad, resp.StatusCode)
		}
	}
}

func TestMONoPostbackURL(t *testing.T) {
	s, _ := start(t, Default())
	if _, err := s.SendMO(MO{From: "17743199144", To: "60856", Text: "STOP"}); err == nil || !strings.Contains(err.Error(), "no postback URL") {
		t.Errorf("SendMO without a URL = %v", err)
	}
	if s.OptedOut("17743199144", "60856") {
		t.Error("an MO that was not posted opted out")
	}
}
