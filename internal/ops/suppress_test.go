package ops_test

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/mmsgate/mmsgate/internal/ops"
	"github.com/mmsgate/mmsgate/pkg/store"
)

// suppressed fills the list as the sender does: two numbers, one of them
// for one campaign only, and one entry already ended.
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
		{3 * time.Minute, "15550002222", "", "E114", "order-3", time.Minute},
	} {
		f.clock.at(s.at)
		if err := f.st.Suppress(ctx, store.SuppressionKey(s.to, s.campaign), s.code, s.id, s.ttl); err != nil {
			t.Fatal(err)
		}
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
		{Key: "15550001111#spring-promo", Number: "15550001111", Campaign: "spring-promo", Code: "E715", ID: "order-2",
			Since: "2026-11-26T09:02:00.000Z", Until: "2026-11-29T09:02:00.000Z"},
		{Key: "17743199144", Number: "17743199144", Code: "E110", ID: "order-1",
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
	tests := map[string]struct {
		args     []string
		code     int
		stdout   string
		stderr   string
		liveKeys []string // what the list has afterwards
	}{
		"a number": {args: []string{"suppress", "lift", "17743199144"}, stdout: "lifted 17743199144: the next request to it is sent\n",
			liveKeys: []string{"15550001111#spring-promo"}},
		"a number in one campaign": {args: []string{"suppress", "lift", "15550001111", "--campaign", "spring-promo"},
			stdout: "lifted 15550001111#spring-promo: the next request to it is sent\n", liveKeys: []string{"17743199144"}},
		"json": {args: []string{"suppress", "lift", "--json", "17743199144"}, stdout: "{\"lifted\": \"17743199144\"}\n",
			liveKeys: []string{"15550001111#spring-promo"}},
		"a campaign entry without --campaign": {args: []string{"suppress", "lift", "15550001111"}, code: ops.ExitFailure,
			stderr:   "mmsgate: no live suppression of 15550001111 (an entry for one campaign needs --campaign; `mmsgate suppress list` shows them): not found\n",
			liveKeys: []string{"15550001111#spring-promo", "17743199144"}},
		"an entry that ended": {args: []string{"suppress", "lift", "15550002222"}, code: ops.ExitFailure,
			stderr:   "mmsgate: no live suppression of 15550002222 (an entry for one campaign needs --campaign; `mmsgate suppress list` shows them): not found\n",
			liveKeys: []string{"15550001111#spring-promo", "17743199144"}},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			f := newFixture(t)
			f.suppressed(t)
			out, errOut, code := f.run(t, tt.args...)
			if code != tt.code || out != tt.stdout || errOut != tt.stderr {
				t.Errorf("mmsgate %q = exit %d, stdout %q, stderr %q; want %d, %q, %q", tt.args, code, out, errOut, tt.code, tt.stdout, tt.stderr)
			}
			sups, err := ops.Suppressions(context.Background(), f.st, f.db)
			if err != nil {
				t.Fatal(err)
			}
			var keys []string
			for _, s := range sups {
				keys = append(keys, s.Key)
			}
			if diff := cmp.Diff(tt.liveKeys, keys); diff != "" {
				t.Errorf("live afterwards (-want +got):\n%s", diff)
			}
			// What the sender checks before a call finds nothing any more.
			if key, ok := strings.CutPrefix(strings.TrimSuffix(tt.stdout, ": the next request to it is sent\n"), "lifted "); ok {
				if sup, err := f.st.Suppressed(context.Background(), key); sup != nil || err != nil {
					t.Errorf("Suppressed(%s) after the lift = %+v, %v; want none", key, sup, err)
				}
			}
		})
	}
}
