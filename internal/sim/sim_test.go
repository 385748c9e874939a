package sim

import (
	"bytes"
	"context"
	"encoding/json"
	"encoding/xml"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/mmsgate/mmsgate/pkg/apperr"
	"github.com/mmsgate/mmsgate/pkg/sendreq"
	"github.com/mmsgate/mmsgate/pkg/skycore"
)

const key = "sim-api-key"

// start runs a simulator on a random port.
func start(t *testing.T, cfg Config) (*Server, string) {
	t.Helper()
	s, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(s.Handler())
	t.Cleanup(func() { s.Close(); srv.Close() })
	return s, srv.URL
}

type answer struct {
	Status     string `xml:"STATUS"`
	Code       string `xml:"ERRORCODE"`
	Info       string `xml:"ERRORINFO"`
	TrackingID string `xml:"TRACKINGID"`
	To         string `xml:"TO"`
	From       string `xml:"FROM"`
	MMSID      string `xml:"MMSID"`
	Details    string `xml:"STATUSDETAILS"`
}

func postXML(t *testing.T, base, doc string) answer {
	t.Helper()
	resp, err := http.PostForm(base+APIPath, url.Values{"xml": {doc}})
	if err != nil {
		t.Fatal(err)
	}
	return readAnswer(t, resp)
}

func readAnswer(t *testing.T, resp *http.Response) answer {
	t.Helper()
	defer resp.Body.Close()
	var a answer
	b, _ := io.ReadAll(resp.Body)
	if err := xml.Unmarshal(b, &a); err != nil {
		t.Fatalf("answer %q: %v", b, err)
	}
	return a
}

// doc builds a REQUEST from element strings.
func doc(elems ...string) string {
	return "<REQUEST>" + strings.Join(elems, "") + "</REQUEST>"
}

func el(name, text string) string { return "<" + name + ">" + text + "</" + name + ">" }

func valid(extra ...string) string {
	return doc(append([]string{el("ACTION", "sendSavedMMS"), el("API_KEY", key), el("TO", "17743199144"),
		el("FROM", "60856"), el("MMSID", "1000"), el("CLIENT_REFERENCE", "ref-1")}, extra...)...)
}

func TestAPICodes(t *testing.T) {
	cfg := Default()
	cfg.Accounts[0].PhotoTypes = map[string]string{"https://x.example/a.bmp": "image/bmp", "https://x.example/page": "text/html; charset=utf-8",
		"https://x.example/photo": "IMAGE/JPEG"}
	cfg.Accounts = append(cfg.Accounts, Account{
		APIKey: "strict-key", From: map[string]string{"60856": "1"}, Templates: []Template{{MMSID: 2000, Slides: 3}},
		EnforceCampaignCheck: true, Campaigns: map[string][]string{"spring": {"17743199144"}},
		Blacklist: []string{"17745550000"}, RequireFallbackText: true,
	})
	_, base := start(t, cfg)
	strict := func(extra ...string) string {
		return doc(append([]string{el("ACTION", "sendSavedMMS"), el("API_KEY", "strict-key"), el("FROM", "60856"), el("MMSID", "2000")}, extra...)...)
	}
	vcard := func(inner string) string { return el("DYNAMICVCARD", inner) }
	tests := []struct {
		name, doc, code string
	}{
		{"success", valid(), ""},
		{"action case-insensitive", doc(el("ACTION", "SENDSAVEDMMS"), el("API_KEY", key), el("TO", "17743199144"), el("FROM", "60856"), el("MMSID", "1000")), ""},
		{"children in any order", doc(el("MMSID", "1000"), el("FROM", "60856"), el("TO", "17743199144"), el("API_KEY", key), el("ACTION", "sendSavedMMS")), ""},
		{"not XML", "<REQUEST><TO>", "E108"},
		{"wrong root", "<REQUESTS/>", "E100"},
		{"no action", doc(el("API_KEY", key)), "E101"},
		{"other action", doc(el("ACTION", "sendSMS"), el("API_KEY", key)), "E101"},
		{"no key", doc(el("ACTION", "sendSavedMMS")), "E102"},
		{"wrong key", doc(el("ACTION", "sendSavedMMS"), el("API_KEY", "nope")), "E104"},
		{"no to", doc(el("ACTION", "sendSavedMMS"), el("API_KEY", key), el("MMSID", "1000"), el("FROM", "60856")), "E621"},
		// Skycore's TO is digits only: mmsgate sends "+1 (774) 319-9144" as
		// 17743199144; the simulator refuses what it did not normalise.
		{"to with plus", doc(el("ACTION", "sendSavedMMS"), el("API_KEY", key), el("TO", "+17743199144"), el("MMSID", "1000"), el("FROM", "60856")), "E110"},
		{"to with separators", doc(el("ACTION", "sendSavedMMS"), el("API_KEY", key), el("TO", "1 (774) 319-9144"), el("MMSID", "1000"), el("FROM", "60856")), "E110"},
		{"to of 7 digits", doc(el("ACTION", "sendSavedMMS"), el("API_KEY", key), el("TO", "4412345"), el("MMSID", "1000"), el("FROM", "60856")), ""},
		{"to of 6 digits", doc(el("ACTION", "sendSavedMMS"), el("API_KEY", key), el("TO", "441234"), el("MMSID", "1000"), el("FROM", "60856")), "E110"},
		{"to of 16 digits", doc(el("ACTION", "sendSavedMMS"), el("API_KEY", key), el("TO", "4412345678901234"), el("MMSID", "1000"), el("FROM", "60856")), "E110"},
		{"blacklisted", strict(el("TO", "17745550000")), "E114"},
		{"no mmsid", doc(el("ACTION", "sendSavedMMS"), el("API_KEY", key), el("TO", "17743199144"), el("FROM", "60856")), "E620"},
		{"unknown mmsid", doc(el("ACTION", "sendSavedMMS"), el("API_KEY", key), el("TO", "17743199144"), el("FROM", "60856"), el("MMSID", "77")), "E241"},
		{"still encoding", doc(el("ACTION", "sendSavedMMS"), el("API_KEY", key), el("TO", "17743199144"), el("FROM", "60856"), el("MMSID", "1009")), "E626"},
		{"from not allowed", doc(el("ACTION", "sendSavedMMS"), el("API_KEY", key), el("TO", "17743199144"), el("FROM", "11111"), el("MMSID", "1000")), "E111"},
		{"no default for country", doc(el("ACTION", "sendSavedMMS"), el("API_KEY", key), el("TO", "99912345678"), el("FROM", "60856"), el("MMSID", "1000")), "E111"},
		{"campaign missing", strict(el("TO", "17743199144"), el("FALLBACKSMSTEXT", "x")), "E718"},
		{"campaign unknown", strict(el("TO", "17743199144"), el("CAMPAIGNREF", "autumn"), el("FALLBACKSMSTEXT", "x")), "E721"},
		{"not subscribed", strict(el("TO", "17743199145"), el("CAMPAIGNREF", "spring"), el("FALLBACKSMSTEXT", "x")), "E715"},
		{"fallback text required", strict(el("TO", "17743199144"), el("CAMPAIGNREF", "spring")), "E622"},
		{"fallback disabled, no text needed", strict(el("TO", "17743199144"), el("CAMPAIGNREF", "spring"), el("DISABLEFALLBACKSMS", "yes")), ""},
		{"disablefallbacksms value", valid(el("DISABLEFALLBACKSMS", "maybe")), "E652"},
		{"force_send_as_sms value", valid(el("FORCE_SEND_AS_SMS", "yes")), "E655"},
		{"force_send_as_sms true", valid(el("FORCE_SEND_AS_SMS", "true")), ""},
		{"customtext slide past template", strict(el("TO", "17743199144"), el("CAMPAIGNREF", "spring"), el("FALLBACKSMSTEXT", "x"), "<CUSTOMTEXT>"+el("VALUE", "v")+el("SLIDE", "4")+"</CUSTOMTEXT>"), "E100"},
		{"customtext without slide", valid("<CUSTOMTEXT>" + el("VALUE", "v") + "</CUSTOMTEXT>"), "E100"},
		{"customtext value blank", valid("<CUSTOMTEXT>" + el("VALUE", " \n ") + el("SLIDE", "1") + "</CUSTOMTEXT>"), "E100"},
		{"barcode empty", valid(el("DATA", el("BARCODEID", ""))), "E803"},
		{"vcard empty", valid(vcard("<NAME><FIRSTNAME/><LASTNAME/></NAME>")), "E1501"},
		{"vcard no name", valid(vcard(el("ORGANIZATION", "Acme"))), "E1515"},
		{"vcard bad name", valid(vcard(el("NAME", el("FIRSTNAME", "A&amp;B")))), "E1515"},
		{"vcard photo type told bmp", valid(vcard(el("NAME", el("LASTNAME", "A")) + el("PHOTOURL", "https://x.example/a.bmp"))), "E1502"},
		{"vcard photo type told html", valid(vcard(el("NAME", el("LASTNAME", "A")) + el("PHOTOURL", "https://x.example/page"))), "E1502"},
		{"vcard photo type told jpeg", valid(vcard(el("NAME", el("LASTNAME", "A")) + el("PHOTOURL", "https://x.example/photo"))), ""},
		{"vcard photo bmp not told: an image", valid(vcard(el("NAME", el("LASTNAME", "A")) + el("PHOTOURL", "https://y.example/a.bmp"))), ""},
		{"vcard photo without extension", valid(vcard(el("NAME", el("LASTNAME", "A")) + el("PHOTOURL", "https://cdn.example.com/i/8812?w=400"))), ""},
		{"vcard photo not a URL", valid(vcard(el("NAME", el("LASTNAME", "A")) + el("PHOTOURL", "a.png"))), "E1502"},
		{"vcard photo ftp", valid(vcard(el("NAME", el("LASTNAME", "A")) + el("PHOTOURL", "ftp://x.example/a.png"))), "E1502"},
		{"vcard photo missing", valid(vcard(el("NAME", el("LASTNAME", "A")) + el("PHOTOURL", "https://gone.invalid/a.png"))), "E1511"},
		{"vcard phone blank", valid(vcard(el("NAME", el("LASTNAME", "A")) + el("PHONE", el("NUMBER", " ")))), "E1507"},
		{"vcard phone invalid", valid(vcard(el("NAME", el("LASTNAME", "A")) + el("PHONE", el("NUMBER", "1-800")))), "E1506"},
		{"vcard email invalid", valid(vcard(el("NAME", el("LASTNAME", "A")) + el("EMAIL", el("ID", "nope")))), "E1508"},
		{"vcard label", valid(vcard(el("NAME", el("LASTNAME", "A")) + el("EMAIL", el("ID", "a@b.co")+el("LABEL", "fax")))), "E1516"},
		{"vcard five phones", valid(vcard(el("NAME", el("LASTNAME", "A")) + strings.Repeat(el("PHONE", el("NUMBER", "1")), 5))), "E100"},
		{"vcard entries one level deep", valid(vcard(el("NAME", el("LASTNAME", "A")) + strings.Repeat(el("PHONE", el("NUMBER", "18005550100")+el("LABEL", "home")), 4) +
			el("EMAIL", el("ID", "a@b.co")+el("LABEL", "work")) + el("PHYSICALADDRESS", el("ADDRESS", "1 Main St")+el("LABEL", "home")))), ""},
		{"vcard phone nested twice", valid(vcard(el("NAME", el("LASTNAME", "A")) + el("PHONE", el("PHONE", el("NUMBER", "18005550100"))))), "E100"},
		{"vcard address nested twice", valid(vcard(el("NAME", el("LASTNAME", "A")) + el("PHYSICALADDRESS", el("PHYSICALADDRESS", el("ADDRESS", "1 Main St"))))), "E100"},
		{"mmsid not a number", doc(el("ACTION", "sendSavedMMS"), el("API_KEY", key), el("TO", "17743199144"), el("FROM", "60856"), el("MMSID", "12ab")), "E620"},
		{"two vcards", valid(vcard(el("NAME", el("LASTNAME", "A"))), vcard(el("NAME", el("LASTNAME", "B")))), "E100"},
		{"doctype refused", `<!DOCTYPE x [<!ENTITY a "b">]>` + valid(), "E108"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := postXML(t, base, tt.doc)
			if a.Code != tt.code {
				t.Errorf("code = %q (%s), want %q", a.Code, a.Info, tt.code)
			}
			if tt.code == "" && (a.Status != "Success" || a.TrackingID == "") {
				t.Errorf("success answer = %+v", a)
			}
			if tt.code != "" && (a.Status != "Failure" || a.Info == "") {
				t.Errorf("failure answer = %+v", a)
			}
		})
	}
}

func TestAPIForms(t *testing.T) {
	s, base := start(t, Default())
	t.Run("raw XML body", func(t *testing.T) {
		resp, err := http.Post(base+APIPath, "application/x-www-form-urlencoded", strings.NewReader(`<?xml version="1.0" encoding="UTF-8"?>`+valid()))
		if err != nil {
			t.Fatal(err)
		}
		if a := readAnswer(t, resp); a.Status != "Success" {
			t.Errorf("raw body answer = %+v", a)
		}
	})
	t.Run("GET lower-case parameters", func(t *testing.T) {
		q := url.Values{"action": {"sendsavedmms"}, "api_key": {key}, "to": {"17743199144"}, "from": {"60856"},
			"mmsid": {"1000"}, "customtext_2": {"two"}, "customtext_1": {"one"}, "data_first_name": {"John"}, "client_reference": {"get-1"}}
		resp, err := http.Get(base + APIPath + "?" + q.Encode())
		if err != nil {
			t.Fatal(err)
		}
		if a := readAnswer(t, resp); a.Status != "Success" {
			t.Fatalf("GET answer = %+v", a)
		}
		got := s.Requests()
		f := got[len(got)-1].Fields
		want := map[string]string{"CUSTOMTEXT.VALUE": "one", "CUSTOMTEXT[1].VALUE": "two", "DATA.FIRST_NAME": "John", "CLIENT_REFERENCE": "get-1"}
		for k, v := range want {
			if f[k] != v {
				t.Errorf("field %s = %q, want %q (all: %v)", k, f[k], v, f)
			}
		}
	})
	t.Run("POST form parameters", func(t *testing.T) {
		resp, err := http.PostForm(base+APIPath, url.Values{"action": {"sendSavedMMS"}, "api_key": {key}, "to": {"17743199144"}, "from": {"60856"}, "mmsid": {"1001"}})
		if err != nil {
			t.Fatal(err)
		}
		if a := readAnswer(t, resp); a.Status != "Success" {
			t.Errorf("form answer = %+v", a)
		}
	})
	t.Run("empty POST", func(t *testing.T) {
		resp, err := http.Post(base+APIPath, "text/plain", nil)
		if err != nil {
			t.Fatal(err)
		}
		if a := readAnswer(t, resp); a.Code != "E100" {
			t.Errorf("empty answer = %+v", a)
		}
	})
}

func TestSuccessFields(t *testing.T) {
	s, base := start(t, Default())
	a := postXML(t, base, valid())
	b := postXML(t, base, valid())
	if a.TrackingID == b.TrackingID || len(a.TrackingID) < 8 {
		t.Errorf("tracking ids %q, %q: want unique and opaque", a.TrackingID, b.TrackingID)
	}
	if a.MMSID != "1000" || a.To != "17743199144" || a.From != "60856" || a.Details == "" {
		t.Errorf("answer = %+v", a)
	}
	uk := postXML(t, base, doc(el("ACTION", "sendSavedMMS"), el("API_KEY", key), el("TO", "447700900123"), el("FROM", "60856"), el("MMSID", "1000")))
	if uk.From != "60060" {
		t.Errorf("FROM for a UK number = %q, want the UK default 60060", uk.From)
	}
	w := postXML(t, base, valid(el("SHINY_NEW", "x")))
	if w.Status != "Success" {
		t.Fatalf("unknown element must not fail: %+v", w)
	}
	reqs := s.Requests()
	if got := reqs[len(reqs)-1].Warnings; len(got) != 1 || !strings.Contains(got[0], "SHINY_NEW") {
		t.Errorf("warnings = %v, want one naming SHINY_NEW", got)
	}
	if c := s.Counts(); c.Accepted["ref-1"] != 3 || c.AcceptedTo["17743199144"] != 3 || c.AcceptedTo["447700900123"] != 1 || len(c.Accepted) != 1 {
		t.Errorf("counts = %+v", c)
	}
}

// receiver collects postbacks; fail decides the status per arrival.
type receiver struct {
	mu   sync.Mutex
	got  []map[string]string
	fail func(n int) int
}

func (rc *receiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	b, _ := io.ReadAll(r.Body)
	tree, err := parseTree(b)
	rc.mu.Lock()
	n := len(rc.got)
	status := http.StatusOK
	if rc.fail != nil {
		status = rc.fail(n)
	}
	if err == nil && status == http.StatusOK {
		f := tree.flatten()
		f["_root"] = tree.Name
		rc.got = append(rc.got, f)
	}
	rc.mu.Unlock()
	w.WriteHeader(status)
}

func (rc *receiver) codes() []string {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	var out []string
	for _, g := range rc.got {
		out = append(out, g["CODE"])
	}
	return out
}

func startWithReceiver(t *testing.T, cfg Config, rc *receiver) (*Server, string) {
	t.Helper()
	recv := httptest.NewServer(rc)
	t.Cleanup(recv.Close)
	cfg.PostbackURL = recv.URL
	cfg.PostbackDelay = Duration(5 * time.Millisecond)
	cfg.RetryInterval = Duration(20 * time.Millisecond)
	return start(t, cfg)
}

func waitIdle(t *testing.T, s *Server) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := s.WaitIdle(ctx); err != nil {
		t.Fatalf("postbacks still pending: %d", s.Pending())
	}
}

func TestPostbackScenarios(t *testing.T) {
	tests := []struct {
		scenario Scenario
		codes    []string
		statuses []string
		sentAs   []string
	}{
		{ScenarioDelivered, []string{"N101", "N102"}, []string{"Message Sent", "Message Sent/Delivered"}, []string{"MMS", "MMS"}},
		{ScenarioNoReceipt, []string{"N101"}, []string{"Message Sent"}, []string{"MMS"}},
		{ScenarioFailed, []string{"E101"}, []string{"Message Failed"}, []string{""}},
		{ScenarioUndeliveredFailed, []string{"N101", "E102"}, []string{"Message Sent", "Message Sent/Failed"}, []string{"MMS", "MMS"}},
		{ScenarioExpired, []string{"N101", "E102"}, []string{"Message Sent", "Message Sent/Expired"}, []string{"MMS", "MMS"}},
		{ScenarioRejected, []string{"N101", "E102"}, []string{"Message Sent", "Message Sent/Rejected"}, []string{"MMS", "MMS"}},
		{ScenarioNotSupported, []string{"N101", "E102"}, []string{"Message Sent", "Message Sent/NotSupported"}, []string{"MMS", "MMS"}},
		{ScenarioFallbackDelivered, []string{"N101", "N202"}, []string{"Message Sent", "Message Sent/Delivered"}, []string{"SMS", "SMS"}},
		{ScenarioFallbackFailed, []string{"N101", "E202"}, []string{"Message Sent", "Message Sent/Failed"}, []string{"SMS", "SMS"}},
		{ScenarioNone, nil, nil, nil},
	}
	for _, tt := range tests {
		t.Run(string(tt.scenario), func(t *testing.T) {
			rc := &receiver{}
			cfg := Default()
			cfg.Scenarios = Scenarios{Default: tt.scenario}
			s, base := startWithReceiver(t, cfg, rc)
			a := postXML(t, base, valid())
			waitIdle(t, s)
			var codes, statuses, sentAs []string
			for _, g := range rc.got {
				codes, statuses, sentAs = append(codes, g["CODE"]), append(statuses, g["STATUS"]), append(sentAs, g["SENTAS"])
				if g["_root"] != "POSTBACK" || g["TRACKINGID"] != a.TrackingID || g["CLIENT_REFERENCE"] != "ref-1" ||
					g["ORIGIN"] != "MMS_MT" || g["TO"] != "17743199144" || len(g["SPID"]) != 7 {
					t.Errorf("postback %v does not match the message", g)
				}
				if (g["CODE"] == "E101") == (g["TIMESTAMP"] != "") {
					t.Errorf("%s TIMESTAMP = %q", g["CODE"], g["TIMESTAMP"])
				}
				if g["CODE"] == "N102" && (g["HANDSET"] == "" || g["AGGREGATORID"] == "") {
					t.Errorf("N102 without HANDSET/AGGREGATORID: %v", g)
				}
			}
			// Postbacks go out concurrently: their arrival order is not fixed.
			anyOrder := cmpopts.SortSlices(func(a, b string) bool { return a < b })
			if diff := cmp.Diff(tt.codes, codes, anyOrder); diff != "" {
				t.Errorf("codes (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tt.statuses, statuses, anyOrder); diff != "" {
				t.Errorf("statuses (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tt.sentAs, sentAs, anyOrder); diff != "" {
				t.Errorf("SENTAS (-want +got):\n%s", diff)
			}
		})
	}
}

func TestScenarioRulesAndMix(t *testing.T) {
	sc := Scenarios{
		Default: ScenarioDelivered,
		Rules:   []ScenarioRule{{Match: Match{ToSuffix: "0001"}, Scenario: ScenarioFailed}, {Match: Match{MMSID: 1002}, Scenario: ScenarioNoReceipt}},
	}
	if got := sc.pick(1, "17745550001", 1000, "a"); got != ScenarioFailed {
		t.Errorf("TO rule: %s", got)
	}
	if got := sc.pick(1, "17745550002", 1002, "a"); got != ScenarioNoReceipt {
		t.Errorf("MMSID rule: %s", got)
	}
	if got := sc.pick(1, "17745550002", 1000, "a"); got != ScenarioDelivered {
		t.Errorf("default: %s", got)
	}
	mix := Scenarios{Mix: map[Scenario]int{ScenarioDelivered: 3, ScenarioExpired: 1}}
	seen := map[Scenario]int{}
	for i := range 400 {
		ref := fmt.Sprint("m", i)
		a, b := mix.pick(7, "1", 1, ref), mix.pick(7, "1", 1, ref)
		if a != b {
			t.Fatalf("mix is not deterministic for %s", ref)
		}
		seen[a]++
	}
	if seen[ScenarioDelivered] < 250 || seen[ScenarioExpired] < 60 {
		t.Errorf("mix 3:1 gave %v", seen)
	}
}

func TestPostbackRetries(t *testing.T) {
	t.Run("retried after non-200", func(t *testing.T) {
		// The receiver keeps only what it accepted; attempts are in s.Postbacks().
		calls := 0
		rc := &receiver{}
		rc.fail = func(int) int {
			calls++
			if calls <= 2 {
				return 503
			}
			return 200
		}
		cfg := Default()
		cfg.Scenarios = Scenarios{Default: ScenarioNoReceipt}
		s, base := startWithReceiver(t, cfg, rc)
		postXML(t, base, valid())
		waitIdle(t, s)
		var attempts []int
		for _, p := range s.Postbacks() {
			attempts = append(attempts, p.Status)
		}
		if diff := cmp.Diff([]int{503, 503, 200}, attempts); diff != "" {
			t.Errorf("attempt statuses (-want +got):\n%s", diff)
		}
		if len(rc.codes()) != 1 {
			t.Errorf("receiver accepted %v", rc.codes())
		}
	})
	t.Run("dropped after 5 retries", func(t *testing.T) {
		rc := &receiver{fail: func(int) int { return 500 }}
		cfg := Default()
		cfg.Scenarios = Scenarios{Default: ScenarioNoReceipt}
		s, base := startWithReceiver(t, cfg, rc)
		postXML(t, base, valid())
		waitIdle(t, s)
		pbs := s.Postbacks()
		if len(pbs) != 6 || !pbs[5].Dropped || pbs[4].Dropped {
			t.Errorf("attempts = %+v, want 1 try + 5 retries, the last dropped", pbs)
		}
	})
	t.Run("no answer in time is retried", func(t *testing.T) {
		var mu sync.Mutex
		calls := 0
		slow := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			mu.Lock()
			calls++
			n := calls
			mu.Unlock()
			if n == 1 {
				select {
				case <-time.After(2 * time.Second):
				case <-r.Context().Done():
				}
			}
		})
		recv := httptest.NewServer(slow)
		defer recv.Close()
		cfg := Default()
		cfg.Scenarios = Scenarios{Default: ScenarioNoReceipt}
		cfg.PostbackURL, cfg.PostbackDelay, cfg.RetryInterval = recv.URL, Duration(time.Millisecond), Duration(10*time.Millisecond)
		cfg.PostbackTimeout = Duration(100 * time.Millisecond)
		s, base := start(t, cfg)
		postXML(t, base, valid())
		waitIdle(t, s)
		pbs := s.Postbacks()
		if len(pbs) != 2 || pbs[0].Status != 0 || pbs[0].Error == "" || !pbs[1].Accepted {
			t.Errorf("attempts = %+v, want a timed-out try then an accepted retry", pbs)
		}
	})
}

func TestPostbackDisorder(t *testing.T) {
	t.Run("redelivery", func(t *testing.T) {
		rc := &receiver{}
		cfg := Default()
		cfg.Scenarios = Scenarios{Default: ScenarioNoReceipt}
		cfg.DuplicateRate = 1
		s, base := startWithReceiver(t, cfg, rc)
		postXML(t, base, valid())
		waitIdle(t, s)
		if diff := cmp.Diff([]string{"N101", "N101"}, rc.codes()); diff != "" {
			t.Errorf("codes (-want +got):\n%s", diff)
		}
		if pbs := s.Postbacks(); len(pbs) != 2 || !pbs[1].Redelivery {
			t.Errorf("attempts = %+v", pbs)
		}
	})
	t.Run("out of order", func(t *testing.T) {
		rc := &receiver{}
		cfg := Default()
		cfg.ReorderRate = 1
		s, base := startWithReceiver(t, cfg, rc)
		postXML(t, base, valid())
		waitIdle(t, s)
		if diff := cmp.Diff([]string{"N102", "N101"}, rc.codes()); diff != "" {
			t.Errorf("codes (-want +got):\n%s", diff)
		}
	})
}

// TestClientAgainstSimulator runs pkg/skycore's client against every
// outcome the simulator can produce.
func TestClientAgainstSimulator(t *testing.T) {
	tests := []struct {
		name      string
		fault     *Fault
		req       func(r *sendreq.Request)
		wantCode  apperr.Code
		wantClass apperr.Class
	}{
		{name: "accepted"},
		{name: "E106", fault: &Fault{Kind: "E106", Seconds: 3}, wantCode: "E106", wantClass: apperr.Retry},
		{name: "E113", fault: &Fault{Kind: "E113"}, wantCode: "E113", wantClass: apperr.Retry},
		{name: "E120", fault: &Fault{Kind: "E120"}, wantCode: "E120", wantClass: apperr.Retry},
		{name: "E503", fault: &Fault{Kind: "E503"}, wantCode: "E503", wantClass: apperr.Retry},
		{name: "E618", fault: &Fault{Kind: "E618"}, wantCode: "E618", wantClass: apperr.Retry},
		{name: "E713 billing", fault: &Fault{Kind: "E713"}, wantCode: "E713", wantClass: apperr.Config},
		{name: "http500", fault: &Fault{Kind: "http500"}, wantCode: "HTTP_500", wantClass: apperr.Retry},
		{name: "http502", fault: &Fault{Kind: "http502"}, wantCode: "HTTP_502", wantClass: apperr.Retry},
		{name: "http503", fault: &Fault{Kind: "http503"}, wantCode: "HTTP_503", wantClass: apperr.Retry},
		{name: "html", fault: &Fault{Kind: "html"}, wantCode: "HTTP_200", wantClass: apperr.Retry},
		{name: "reset", fault: &Fault{Kind: "reset"}, wantCode: apperr.CodeNetwork, wantClass: apperr.Retry},
		{name: "truncate", fault: &Fault{Kind: "truncate"}, wantCode: apperr.CodeNetwork, wantClass: apperr.Retry},
		{name: "hang", fault: &Fault{Kind: "hang"}, wantCode: apperr.CodeTimeout, wantClass: apperr.Retry},
		{name: "unknown template", req: func(r *sendreq.Request) { r.MMSID = "5" }, wantCode: "E241", wantClass: apperr.Permanent},
		{name: "encoding", req: func(r *sendreq.Request) { r.MMSID = "1009" }, wantCode: "E626", wantClass: apperr.Retry},
		{name: "from not allowed", req: func(r *sendreq.Request) { r.From = "12345" }, wantCode: "E111", wantClass: apperr.Permanent},
		// The table's classes; skycore.Blame refines E100 and E111 by who
		// is at fault.
		{name: "E100", fault: &Fault{Kind: "E100"}, wantCode: "E100", wantClass: apperr.Config},
		{name: "E111", fault: &Fault{Kind: "E111"}, wantCode: "E111", wantClass: apperr.Permanent},
		{name: "to as people write it goes out as digits", req: func(r *sendreq.Request) { r.To = "+1 (774) 319-9144" }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			cfg := Default()
			if tt.fault != nil {
				cfg.Faults = []Fault{*tt.fault}
			}
			s, base := start(t, cfg)
			c := skycore.New(base+APIPath, skycore.WithTimeout(300*time.Millisecond))
			r := &sendreq.Request{ID: "c-1", To: "17743199144", From: "60856", MMSID: "1000",
				Slides: []sendreq.Slide{{Slide: 2, Text: "a & b\nc"}}, Data: map[string]string{"firstname": "Zoë"},
				VCard: &sendreq.VCard{FirstName: "Ada", LastName: "L", Phones: []sendreq.Phone{{Number: "18005550100", Label: "work"}}}}
			if tt.req != nil {
				tt.req(r)
			}
			resp, err := c.SendSavedMMS(context.Background(), key, r)
			if tt.wantCode == "" {
				if err != nil || resp.TrackingID == "" {
					t.Fatalf("SendSavedMMS = %+v, %v", resp, err)
				}
				got := s.Requests()[0]
				if got.Warnings != nil || got.Fields["CUSTOMTEXT.VALUE"] != "a & b\nc" || got.Fields["DATA.FIRSTNAME"] != "Zoë" ||
					got.Fields["DYNAMICVCARD.PHONE.NUMBER"] != "18005550100" || got.ClientReference != "c-1" {
					t.Errorf("simulator saw %+v", got)
				}
				return
			}
			e, ok := apperr.As(err)
			if !ok || e.Code != tt.wantCode || e.Class != tt.wantClass {
				t.Fatalf("SendSavedMMS error = %v, want %s/%s", err, tt.wantCode, tt.wantClass)
			}
			if c := s.Counts(); c.Accepted["c-1"] != 0 {
				t.Errorf("a failed call counted as a send: %+v", c)
			}
		})
	}
}

func TestFaultRateAndCount(t *testing.T) {
	cfg := Default()
	cfg.Seed = 42
	cfg.Faults = []Fault{{Kind: "E503", Count: 2}, {Kind: "E113", Rate: 0.5, Match: Match{ToPrefix: "44"}}}
	_, base := start(t, cfg)
	var codes []string
	for range 4 {
		codes = append(codes, postXML(t, base, valid()).Code)
	}
	if diff := cmp.Diff([]string{"E503", "E503", "", ""}, codes); diff != "" {
		t.Errorf("count-limited fault (-want +got):\n%s", diff)
	}
	hits := 0
	uk := doc(el("ACTION", "sendSavedMMS"), el("API_KEY", key), el("TO", "447700900123"), el("FROM", "60856"), el("MMSID", "1000"))
	for range 200 {
		if postXML(t, base, uk).Code == "E113" {
			hits++
		}
	}
	if hits < 70 || hits > 130 {
		t.Errorf("rate 0.5 hit %d of 200", hits)
	}
}

func TestLatency(t *testing.T) {
	cfg := Default()
	cfg.Latency = Latency{Fixed: Duration(60 * time.Millisecond)}
	_, base := start(t, cfg)
	start := time.Now()
	postXML(t, base, valid())
	if el := time.Since(start); el < 60*time.Millisecond {
		t.Errorf("answer after %v, want at least the fixed latency", el)
	}
}

func TestInspectionEndpoints(t *testing.T) {
	_, base := start(t, Default())
	postXML(t, base, valid())
	postXML(t, base, doc(el("ACTION", "sendSavedMMS"), el("API_KEY", "bad")))

	var reqs []Request
	getJSON(t, base+"/_sim/requests", &reqs)
	if len(reqs) != 2 || reqs[0].Code != "" || reqs[0].TrackingID == "" || reqs[0].ClientReference != "ref-1" ||
		reqs[0].To != "17743199144" || reqs[0].MMSID != "1000" || !strings.Contains(reqs[0].Raw, "<ACTION>") || reqs[1].Code != "E104" {
		t.Fatalf("requests = %+v", reqs)
	}
	var counts Counts
	getJSON(t, base+"/_sim/counts", &counts)
	if counts.Accepted["ref-1"] != 1 {
		t.Errorf("counts = %+v", counts)
	}

	put(t, base+"/_sim/faults", `[{"kind":"http503"}]`, http.StatusNoContent)
	resp, err := http.PostForm(base+APIPath, url.Values{"xml": {valid()}})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 503 {
		t.Errorf("after PUT /_sim/faults status = %d, want 503", resp.StatusCode)
	}
	put(t, base+"/_sim/faults", `[{"kind":"meteor"}]`, http.StatusBadRequest)
	put(t, base+"/_sim/faults", `[]`, http.StatusNoContent)
	put(t, base+"/_sim/scenarios", `{"default":"expired"}`, http.StatusNoContent)
	put(t, base+"/_sim/scenarios", `{"default":"lost-in-space"}`, http.StatusBadRequest)
	put(t, base+"/_sim/latency", `{"fixed":"1ms"}`, http.StatusNoContent)

	resp, err = http.Post(base+"/_sim/reset", "", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	getJSON(t, base+"/_sim/requests", &reqs)
	if len(reqs) != 0 {
		t.Errorf("after reset: %d requests", len(reqs))
	}
}

func getJSON(t *testing.T, u string, v any) {
	t.Helper()
	resp, err := http.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
		t.Fatal(err)
	}
}

func put(t *testing.T, u, body string, want int) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPut, u, bytes.NewBufferString(body))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != want {
		t.Errorf("PUT %s %s = %d, want %d", u, body, resp.StatusCode, want)
	}
}

func TestLoadConfig(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "sim.json")
	os.WriteFile(p, []byte(`{"seed": 9, "retryInterval": "2s", "scenarios": {"mix": {"delivered": 1, "expired": 1}},
		"faults": [{"kind": "E113", "rate": 0.1}], "latency": {"fixed": 100}}`), 0o644)
	cfg, err := Load(p)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Seed != 9 || time.Duration(cfg.RetryInterval) != 2*time.Second || len(cfg.Accounts) != 1 ||
		time.Duration(cfg.Latency.Fixed) != 100*time.Millisecond || len(cfg.Faults) != 1 {
		t.Errorf("Load = %+v", cfg)
	}
	os.WriteFile(p, []byte(`{"faults": [{"kind": "meteor"}]}`), 0o644)
	if _, err := Load(p); err == nil {
		t.Error("unknown fault kind accepted")
	}
}

// BenchmarkAPI is the simulator's throughput on loopback with no latency.
func BenchmarkAPI(b *testing.B) {
	s, err := New(Default())
	if err != nil {
		b.Fatal(err)
	}
	srv := httptest.NewServer(s.Handler())
	defer srv.Close()
	defer s.Close()
	c := skycore.New(srv.URL + APIPath)
	r := &sendreq.Request{ID: "b", To: "17743199144", From: "60856", MMSID: "1000"}
	b.SetParallelism(4)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := c.SendSavedMMS(context.Background(), key, r); err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "req/s")
}

// TestTrackingIDsDifferAcrossRestarts: a simulator restarted with the same
// seed (make dev PERSIST=1 keeps the table) must not hand out the tracking
// ids it gave before, or a new request's link collides with an old one's.
func TestTrackingIDsDifferAcrossRestarts(t *testing.T) {
	seen := map[string]int{}
	for run := range 3 {
		_, base := start(t, Default()) // the same Seed each time
		for range 5 {
			a := postXML(t, base, valid())
			if prev, dup := seen[a.TrackingID]; dup {
				t.Errorf("run %d handed out %s again (run %d had it)", run, a.TrackingID, prev)
			}
			seen[a.TrackingID] = run
			if !regexp.MustCompile(`^[A-Za-z0-9]{6}-[A-Za-z0-9]{4}-[A-Za-z0-9]{3}$`).MatchString(a.TrackingID) {
				t.Errorf("tracking id %q: want the shape DrXAFP-Ylpc-JZL", a.TrackingID)
			}
		}
	}
}

// TestOddAcceptAnswers: the accept-* faults that answer an accepted send
// oddly queue the message (one acceptance, its postbacks carry
// CLIENT_REFERENCE and the tracking id), and pkg/skycore's client reads
// each as the fault means: in doubt (AMBIGUOUS, MaybeSent), or a Success
// with a tracking id over 2,048 bytes.
func TestOddAcceptAnswers(t *testing.T) {
	for _, kind := range []string{"accept-errorcode", "accept-twostatus", "accept-oversize", "accept-oddroot", "accept-longtid"} {
		t.Run(kind, func(t *testing.T) {
			t.Parallel()
			rc := &receiver{}
			cfg := Default()
			cfg.Faults = []Fault{{Kind: kind}}
			cfg.ReferenceOnLostAnswers, cfg.OmitClientReferenceRate = true, 1
			s, base := startWithReceiver(t, cfg, rc)
			c := skycore.New(base+APIPath, skycore.WithTimeout(2*time.Second))
			resp, err := c.SendSavedMMS(context.Background(), key, &sendreq.Request{ID: "odd-1", To: "17743199144", From: "60856", MMSID: "1000"})
			waitIdle(t, s)
			got := lastRequest(t, s)
			if !got.Accepted || got.Fault != kind || s.Counts().Accepted["odd-1"] != 1 {
				t.Fatalf("request = %+v, counts %+v: want one acceptance with fault %s", got, s.Counts(), kind)
			}
			if OddAnswer(kind) {
				e, ok := apperr.As(err)
				if !ok || e.Code != apperr.CodeAmbiguous || !skycore.MaybeSent(e) {
					t.Errorf("SendSavedMMS = %+v, %v: want AMBIGUOUS, maybe sent", resp, err)
				}
			} else if err != nil || resp.TrackingID != got.TrackingID || len(resp.TrackingID) != LongTrackingIDBytes {
				t.Errorf("SendSavedMMS = %+v, %v: want Success with the %d-byte tracking id", resp, err, LongTrackingIDBytes)
			}
			rc.mu.Lock()
			defer rc.mu.Unlock()
			if len(rc.got) == 0 {
				t.Fatal("no postback")
			}
			for _, pb := range rc.got {
				if pb["CLIENT_REFERENCE"] != "odd-1" || pb["TRACKINGID"] != got.TrackingID {
					t.Errorf("postback %s: CLIENT_REFERENCE %q, TRACKINGID of %d bytes; want odd-1 and the send's", pb["CODE"], pb["CLIENT_REFERENCE"], len(pb["TRACKINGID"]))
				}
			}
		})
	}
}
