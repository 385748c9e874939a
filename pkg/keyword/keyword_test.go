package keyword

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestMatch(t *testing.T) {
	l := Defaults()
	tests := []struct {
		text    string
		intent  Intent
		keyword string
	}{
		{"STOP", OptOut, "STOP"},
		{"Stop.", OptOut, "STOP"},
		{" stop ", OptOut, "STOP"},
		{"\tSTOP!!\n", OptOut, "STOP"},
		{"stop please", OptOut, "STOP"},
		{"STOP ALL", OptOut, "STOPALL"},
		{"stop-all", OptOut, "STOPALL"},
		{"StopAll", OptOut, "STOPALL"},
		{"OPT OUT", OptOut, "OPTOUT"},
		{"opt-out.", OptOut, "OPTOUT"},
		{"Unsubscribe me", OptOut, "UNSUBSCRIBE"},
		{"cancel", OptOut, "CANCEL"},
		{"END", OptOut, "END"},
		{"quit", OptOut, "QUIT"},
		{"Revoke", OptOut, "REVOKE"},
		{"... STOP", OptOut, "STOP"},
		{"«stop»", OptOut, "STOP"},
		{"START", OptIn, "START"},
		{"start!", OptIn, "START"},
		{"unstop", OptIn, "UNSTOP"},
		{"UN STOP", OptIn, "UNSTOP"},
		{"don't stop", None, ""},
		{"please stop", None, ""},
		{"I said STOP", None, ""},
		{"STOPS", None, ""},
		{"S TOP", OptOut, "STOP"}, // two words together, as OPT OUT is
		{"NO STOP", None, ""},
		{"STOP2", None, ""},
		{"OPT", None, ""},
		{"YES", None, ""},
		{"", None, ""},
		{"   ", None, ""},
		{"!!!", None, ""},
		{"😀 stop", OptOut, "STOP"}, // a symbol is not a letter: trimmed like "..."
	}
	for _, tt := range tests {
		t.Run(tt.text, func(t *testing.T) {
			intent, kw := l.Match(tt.text)
			if intent != tt.intent || kw != tt.keyword {
				t.Errorf("Match(%q) = %v, %q; want %v, %q", tt.text, intent, kw, tt.intent, tt.keyword)
			}
		})
	}
}

func TestMatchOff(t *testing.T) {
	var l Lists // OPTOUT_KEYWORDS=none, OPTIN_KEYWORDS=none
	if i, kw := l.Match("STOP"); i != None || kw != "" {
		t.Errorf("with no lists, Match(STOP) = %v, %q", i, kw)
	}
}

func TestFromEnv(t *testing.T) {
	tests := []struct {
		name        string
		out, in     string
		want        Lists
		wantErrPart string
	}{
		{name: "defaults", want: Lists{OptOut: DefaultOptOut, OptIn: DefaultOptIn}},
		{name: "none", out: "none", in: "NONE", want: Lists{}},
		{name: "custom", out: " stop, Arret ,, opt out", in: "start,yes",
			want: Lists{OptOut: []string{"STOP", "ARRET", "OPTOUT"}, OptIn: []string{"START", "YES"}}},
		{name: "duplicates kept once", out: "STOP,stop", want: Lists{OptOut: []string{"STOP"}, OptIn: DefaultOptIn}},
		{name: "opt-out off, opt-in default", out: "none", want: Lists{OptIn: DefaultOptIn}},
		{name: "punctuation", out: "STOP!", wantErrPart: `OPTOUT_KEYWORDS="STOP!": "STOP!" is not a word`},
		{name: "only commas", in: ",,", wantErrPart: "OPTIN_KEYWORDS"},
		{name: "in both", out: "STOP,START", wantErrPart: "START is in both"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env := map[string]string{"OPTOUT_KEYWORDS": tt.out, "OPTIN_KEYWORDS": tt.in}
			got, err := FromEnv(func(k string) string { return env[k] })
			if tt.wantErrPart != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErrPart) {
					t.Fatalf("FromEnv = %v, %v; want an error with %q", got, err, tt.wantErrPart)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("FromEnv (-want +got):\n%s", diff)
			}
		})
	}
}

func TestCustomListMatches(t *testing.T) {
	l, err := FromEnv(func(k string) string {
		return map[string]string{"OPTOUT_KEYWORDS": "arrêt,opt out", "OPTIN_KEYWORDS": "oui"}[k]
	})
	if err != nil {
		t.Fatal(err)
	}
	for text, want := range map[string]Intent{"Arrêt.": OptOut, "opt out": OptOut, "STOP": None, "Oui!": OptIn, "START": None} {
		if got, _ := l.Match(text); got != want {
			t.Errorf("Match(%q) = %v, want %v", text, got, want)
		}
	}
}

// FuzzMatch: no panic, and a match is always one of the lists' words.
func FuzzMatch(f *testing.F) {
	for _, s := range []string{"STOP", "stop all", "don't stop", "", "...", "opt-out", "\xff\xfeSTOP"} {
		f.Add(s)
	}
	l := Defaults()
	f.Fuzz(func(t *testing.T, s string) {
		i, kw := l.Match(s)
		switch i {
		case None:
			if kw != "" {
				t.Fatalf("None with keyword %q", kw)
			}
		case OptOut:
			if l.intent(kw) != OptOut {
				t.Fatalf("OptOut with %q", kw)
			}
		case OptIn:
			if l.intent(kw) != OptIn {
				t.Fatalf("OptIn with %q", kw)
			}
		}
	})
}
