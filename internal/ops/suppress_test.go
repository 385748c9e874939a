package ops_test

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/mmsgate/mmsgate/internal/ops"
	"github.com/mmsgate/mmsgate/pkg/apperr"
	"github.com/mmsgate/mmsgate/pkg/sendreq"
	"github.com/mmsgate/mmsgate/pkg/store"
)

// suppressed fills the list as the sender, the postback function and an
// operator do: two numbers refused by Skycore (one for one campaign only,
// E114 with no end), one entry already ended, an opt-out keyword to one
// code, an operator's entry.
func (f *fixture) suppressed(t *testing.T) {
	t.Helper()
	ctx := context.Background()
	for _, s := range []struct {
		at           time.Duration
		to, campaign string
		code, id     string
		ttl          time.Duration
	}{
		{time.Minute, "17743199144", "", "E110", "order-1", 72 * time.Hour},
		{2 * time.Minute, "15550001111", "spring-promo", "E715", "order-2", 72 * time.Hour},
		{3 * time.Minute, "15550002222", "", "E110", "order-3", time.Minute},
		{4 * time.Minute, "15550003333", "", "E114", "order-4", time.Minute},
	} {
		f.clock.at(s.at)
		if err := f.st.Suppress(ctx, store.SuppressionKey(s.to, s.campaign), s.code, s.id, s.ttl); err != nil {
			t.Fatal(err)
		}
	}
	f.clock.at(5 * time.Minute)
	if _, err := f.st.OptOut(ctx, "15550004444", "60856", store.Word{Keyword: "STOP", MessageID: "511XG-02294"}); err != nil {
		t.Fatal(err)
	}
	f.clock.at(6 * time.Minute)
	if err := f.st.SuppressByOperator(ctx, "15550005555", "", "asked by phone\n(ticket 12)"); err != nil {
		t.Fatal(err)
	}
	f.clock.at(time.Hour) // the third has ended
}

func TestSuppressList(t *testing.T) {
	f := newFixture(t)
	f.suppressed(t)
	out, errOut, code := f.run(t, "suppress", "list")
	if code != 0 {
		t.Fatalf("suppress list = exit %d; stderr:\n%s", code, errOut)
	}
	golden(t, "suppress/list.txt", out)

	out, _, _ = f.run(t, "suppress", "list", "--json")
	var got []ops.Suppression
	if err := json.Unmarshal([]byte(out), &got); err != nil {
		t.Fatalf("%v:\n%s", err, out)
	}
	want := []ops.Suppression{
		{Key: "15550001111#spring-promo", Number: "15550001111", Campaign: "spring-promo", Code: "E715", Source: "E715", ID: "order-2",
			Since: "2026-11-26T09:02:00.000Z", Until: "2026-11-29T09:02:00.000Z"},
		{Key: "15550003333", Number: "15550003333", Code: "E114", Source: "E114", ID: "order-4", Since: "2026-11-26T09:04:00.000Z"},
		{Key: "15550004444@60856", Number: "15550004444", From: "60856", Code: "OPTED_OUT", Source: "keyword", Reason: "STOP",
			ID: "511XG-02294", Since: "2026-11-26T09:05:00.000Z"},
		{Key: "15550005555", Number: "15550005555", Code: "OPTED_OUT", Source: "operator", Reason: "asked by phone\n(ticket 12)",
			Since: "2026-11-26T09:06:00.000Z"},
		{Key: "17743199144", Number: "17743199144", Code: "E110", Source: "E110", ID: "order-1",
			Since: "2026-11-26T09:01:00.000Z", Until: "2026-11-29T09:01:00.000Z"},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("suppress list --json (-want +got):\n%s", diff)
	}
}

func TestSuppressListEmpty(t *testing.T) {
	f := newFixture(t)
	for _, tt := range []struct {
		args []string
		want string
	}{
		{[]string{"suppress", "list"}, "no live suppressions\n"},
		{[]string{"suppress", "list", "--json"}, "[]\n"},
	} {
		out, errOut, code := f.run(t, tt.args...)
		if code != 0 || out != tt.want {
			t.Errorf("mmsgate %q = exit %d, %q (stderr %q); want %q", tt.args, code, out, errOut, tt.want)
		}
	}
}

func TestSuppressLift(t *testing.T) {
	all := []string{"15550001111#spring-promo", "15550003333", "15550004444@60856", "15550005555", "17743199144"}
	without := func(k string) []string {
		var out []string
		for _, x := range all {
			if x != k {
				out = append(out, x)
			}
		}
		return out
	}
	tests := map[string]struct {
		args     []string
		code     int
		stdout   string
		stderr   string
		liveKeys []string // what the list has afterwards
	}{
		"a number": {args: []string{"suppress", "lift", "17743199144"}, stdout: "lifted 17743199144: the next request to it is sent\n",
			liveKeys: without("17743199144")},
		"a number written with + and separators": {args: []string{"suppress", "lift", "+1 774-319-9144"}, stdout: "lifted 17743199144: the next request to it is sent\n",
			liveKeys: without("17743199144")},
		"a number as people write it": {args: []string{"suppress", "lift", "+1 (774) 319-9144"}, stdout: "lifted 17743199144: the next request to it is sent\n",
			liveKeys: without("17743199144")},
		"E114, which has no end": {args: []string{"suppress", "lift", "15550003333"}, stdout: "lifted 15550003333: the next request to it is sent\n",
			liveKeys: without("15550003333")},
		"an operator's entry": {args: []string{"suppress", "lift", "15550005555"}, stdout: "lifted 15550005555: the next request to it is sent\n",
			liveKeys: without("15550005555")},
		"a number in one campaign": {args: []string{"suppress", "lift", "15550001111", "--campaign", "spring-promo"},
			stdout: "lifted 15550001111#spring-promo: the next request to it is sent\n", liveKeys: without("15550001111#spring-promo")},
		"an opt-out from one code": {args: []string{"suppress", "lift", "--from", "60856", "15550004444"},
			stdout: "lifted 15550004444@60856: the next request to it is sent\n", liveKeys: without("15550004444@60856")},
		"json": {args: []string{"suppress", "lift", "--json", "17743199144"}, stdout: "{\"lifted\": \"17743199144\"}\n",
			liveKeys: without("17743199144")},
		"an opt-out without --from": {args: []string{"suppress", "lift", "15550004444"}, code: ops.ExitFailure,
			stderr:   "mmsgate: no live suppression of 15550004444 (an entry for one campaign needs --campaign, one for a code --from; `mmsgate suppress list` shows them): not found\n",
			liveKeys: all},
		"an opt-out from another code": {args: []string{"suppress", "lift", "15550004444", "--from", "70000"}, code: ops.ExitFailure,
			stderr: "mmsgate: no live suppression of 15550004444@70000: not found\n", liveKeys: all},
		"an entry that ended": {args: []string{"suppress", "lift", "15550002222"}, code: ops.ExitFailure,
			stderr:   "mmsgate: no live suppression of 15550002222 (an entry for one campaign needs --campaign, one for a code --from; `mmsgate suppress list` shows them): not found\n",
			liveKeys: all},
		"--campaign and --from": {args: []string{"suppress", "lift", "15550004444", "--from", "1", "--campaign", "c"}, code: ops.ExitUsage,
			stderr: "mmsgate: suppress lift takes --campaign or --from, not both (-h for help)\n", liveKeys: all},
		"--reason": {args: []string{"suppress", "lift", "15550004444", "--reason", "x"}, code: ops.ExitUsage,
			stderr: "mmsgate: --reason is for add (-h for help)\n", liveKeys: all},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			f := newFixture(t)
			f.suppressed(t)
			out, errOut, code := f.run(t, tt.args...)
			if code != tt.code || out != tt.stdout || errOut != tt.stderr {
				t.Errorf("mmsgate %q = exit %d, stdout %q, stderr %q; want %d, %q, %q", tt.args, code, out, errOut, tt.code, tt.stdout, tt.stderr)
			}
			f.wantLive(t, tt.liveKeys)
			// What the sender checks before a call finds nothing any more.
			if key, ok := strings.CutPrefix(strings.TrimSuffix(tt.stdout, ": the next request to it is sent\n"), "lifted "); ok {
				if sup, err := f.st.Suppressed(context.Background(), key); sup != nil || err != nil {
					t.Errorf("Suppressed(%s) after the lift = %+v, %v; want none", key, sup, err)
				}
			}
		})
	}
}

func (f *fixture) wantLive(t *testing.T, want []string) {
	t.Helper()
	sups, err := ops.Suppressions(context.Background(), f.st, f.db)
	if err != nil {
		t.Fatal(err)
	}
	var keys []string
	for _, s := range sups {
		keys = append(keys, s.Key)
	}
	if diff := cmp.Diff(want, keys); diff != "" {
		t.Errorf("live afterwards (-want +got):\n%s", diff)
	}
}

func TestSuppressAdd(t *testing.T) {
	tests := map[string]struct {
		args   []string
		code   int
		stdout string
		stderr string
		live   []string
	}{
		"a number, every code": {args: []string{"suppress", "add", "+1 (774) 319-9144", "--reason", "asked by phone"},
			stdout: "suppressed 17743199144: its requests are rejected (OPTED_OUT) until `mmsgate suppress lift`\n", live: []string{"17743199144"}},
		"a number as people write it": {args: []string{"suppress", "add", "+1 (774) 555-0100"},
			stdout: "suppressed 17745550100: its requests are rejected (OPTED_OUT) until `mmsgate suppress lift`\n", live: []string{"17745550100"}},
		"a + after a space, as the sender takes it": {args: []string{"suppress", "add", " +1 774.555.0100"},
			stdout: "suppressed 17745550100: its requests are rejected (OPTED_OUT) until `mmsgate suppress lift`\n", live: []string{"17745550100"}},
		"a + after the digits": {args: []string{"suppress", "add", "1774555010+0"}, code: ops.ExitFailure,
			stderr: "mmsgate: \"1774555010+0\" is not a phone number (digits, with an optional + and separators)\n"},
		"two +": {args: []string{"suppress", "add", "++17745550100"}, code: ops.ExitFailure,
			stderr: "mmsgate: \"++17745550100\" is not a phone number (digits, with an optional + and separators)\n"},
		"too long": {args: []string{"suppress", "add", "+1234 5678 9012 3456"}, code: ops.ExitFailure,
			stderr: "mmsgate: \"+1234 5678 9012 3456\" is not a phone number: 16 digits, want 7-15\n"},
		"one code": {args: []string{"suppress", "add", "--from", "60856", "17743199144"},
			stdout: "suppressed 17743199144@60856: its requests are rejected (OPTED_OUT) until `mmsgate suppress lift`\n", live: []string{"17743199144@60856"}},
		"json": {args: []string{"--json", "suppress", "add", "17743199144"}, stdout: "{\"suppressed\": \"17743199144\"}\n", live: []string{"17743199144"}},
		"not a number": {args: []string{"suppress", "add", "jane@example.com"}, code: ops.ExitFailure,
			stderr: "mmsgate: \"jane@example.com\" is not a phone number (digits, with an optional + and separators)\n"},
		"too short": {args: []string{"suppress", "add", "12345"}, code: ops.ExitFailure,
			stderr: "mmsgate: \"12345\" is not a phone number: 5 digits, want 7-15\n"},
		"a code that is not digits": {args: []string{"suppress", "add", "17743199144", "--from", "ACME"}, code: ops.ExitFailure,
			stderr: "mmsgate: --from \"ACME\": a short or long code is digits only\n"},
		"a reason too long": {args: []string{"suppress", "add", "17743199144", "--reason", strings.Repeat("x", ops.MaxReason+1)}, code: ops.ExitFailure,
			stderr: "mmsgate: --reason is 513 bytes; at most 512\n"},
		"--campaign": {args: []string{"suppress", "add", "17743199144", "--campaign", "c"}, code: ops.ExitUsage,
			stderr: "mmsgate: suppress add takes --from, not --campaign (-h for help)\n"},
		"no number": {args: []string{"suppress", "add"}, code: ops.ExitUsage, stderr: "mmsgate: suppress add wants one number (-h for help)\n"},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			f := newFixture(t)
			out, errOut, code := f.run(t, tt.args...)
			if code != tt.code || out != tt.stdout || errOut != tt.stderr {
				t.Errorf("mmsgate %q = exit %d, stdout %q, stderr %q; want %d, %q, %q", tt.args, code, out, errOut, tt.code, tt.stdout, tt.stderr)
			}
			f.wantLive(t, tt.live)
		})
	}
}

// TestSuppressAddThenSend: what the sender checks before a call
// (SuppressedFor) sees an operator's entry, for the codes it covers only,
// until it is lifted; and the list shows where it came from.
func TestSuppressAddThenSend(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	if _, _, code := f.run(t, "suppress", "add", "17743199144", "--from", "60856", "--reason", "complaint"); code != 0 {
		t.Fatal("add failed")
	}
	f.clock.at(400 * 24 * time.Hour)
	sup, err := f.st.SuppressedFor(ctx, "17743199144", "60856", "")
	if err != nil || sup == nil || sup.Code != "OPTED_OUT" || sup.Source != "operator" || sup.Reason != "complaint" {
		t.Fatalf("SuppressedFor(from 60856) = %+v, %v", sup, err)
	}
	if sup, err := f.st.SuppressedFor(ctx, "17743199144", "70000", ""); sup != nil || err != nil {
		t.Errorf("SuppressedFor(from 70000) = %+v, %v; want none", sup, err)
	}
	if _, _, code := f.run(t, "suppress", "lift", "17743199144", "--from", "60856"); code != 0 {
		t.Fatal("lift failed")
	}
	if sup, err := f.st.SuppressedFor(ctx, "17743199144", "60856", ""); sup != nil || err != nil {
		t.Errorf("after the lift = %+v, %v", sup, err)
	}
}

// TestSuppressNumberAsTheSenderReadsIt: `suppress add` takes a number when,
// and only when, the sender takes it as a request's "to", and keys the
// entry by the number the sender checks (the same code reads both).
func TestSuppressNumberAsTheSenderReadsIt(t *testing.T) {
	for _, in := range []string{"17743199144", "+1 (774) 319-9144", " +1 774 319 9144 ", "(+1)774-319-9144", "+44 20 7946 0958",
		"1-774-319-9144-", "1774319914+4", "++17743199144", "+1 774 319 9144 x2", "774 319", "+1234 5678 9012 3456", "１７７４３１９９１４４", ""} {
		t.Run(in, func(t *testing.T) {
			body, _ := json.Marshal(map[string]any{"id": "r", "to": in, "from": "60856", "mmsId": 1000})
			r, err := sendreq.Decode(body)
			if err != nil {
				t.Fatal(err)
			}
			r.ApplyDefaults(sendreq.Policy{})
			senderTakes := !slices.ContainsFunc(apperr.All(r.Validate(sendreq.Policy{})), func(e *apperr.Error) bool { return e.Field == "to" })
			f := newFixture(t)
			out, errOut, code := f.run(t, "--json", "suppress", "add", in)
			if (code == 0) != senderTakes {
				t.Fatalf("suppress add %q: exit %d (%s%s); the sender takes it: %v", in, code, out, errOut, senderTakes)
			}
			if senderTakes && out != fmt.Sprintf("{\"suppressed\": %q}\n", r.To) {
				t.Errorf("suppress add %q = %q; the sender checks %s", in, out, r.To)
			}
		})
	}
}
