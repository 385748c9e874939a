package postback

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/mmsgate/mmsgate/pkg/delivery"
)

// golden is what a fixture must give: its notifications and events, or an
// error (malformed: acknowledged with 200, no event).
type golden struct {
	Notifications []Notification   `json:"notifications,omitempty"`
	Events        []delivery.Event `json:"events,omitempty"`
	Notices       []string         `json:"notices,omitempty"`
	Unprocessable []string         `json:"unprocessable,omitempty"`
	Error         string           `json:"error,omitempty"`
}

func outcome(body []byte) golden {
	notes, err := Parse(body)
	if err != nil {
		if !errors.Is(err, ErrMalformed) {
			return golden{Error: "not ErrMalformed: " + err.Error()}
		}
		return golden{Error: err.Error()}
	}
	g := golden{Notifications: notes}
	for _, n := range notes {
		ev, notice, ok := Classify(n.Code)
		switch {
		case notice:
			g.Notices = append(g.Notices, n.Code)
		case !ok:
			g.Unprocessable = append(g.Unprocessable, "unknown code "+n.Code)
		case n.TrackingID == "":
			g.Unprocessable = append(g.Unprocessable, "no TRACKINGID")
		default:
			g.Events = append(g.Events, Event(n, ev))
		}
	}
	return g
}

// TestFixtures parses every testdata/*.xml and compares with its
// .golden.json (UPDATE_GOLDEN=1 rewrites them).
func TestFixtures(t *testing.T) {
	files, _ := filepath.Glob("testdata/*.xml")
	if len(files) < 30 {
		t.Fatalf("want every documented shape in testdata, found %d files", len(files))
	}
	for _, f := range files {
		name := strings.TrimSuffix(filepath.Base(f), ".xml")
		t.Run(name, func(t *testing.T) {
			body, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			got := outcome(body)
			gf := strings.TrimSuffix(f, ".xml") + ".golden.json"
			if os.Getenv("UPDATE_GOLDEN") == "1" {
				b, _ := json.MarshalIndent(got, "", "  ")
				os.WriteFile(gf, append(b, '\n'), 0o644)
			}
			b, err := os.ReadFile(gf)
			if err != nil {
				t.Fatalf("golden (UPDATE_GOLDEN=1 creates it): %v", err)
			}
			var want golden
			if err := json.Unmarshal(b, &want); err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("%s (-want +got):\n%s", name, diff)
			}
		})
	}
}

// TestShapes pins what matters most of the goldens, so a careless
// UPDATE_GOLDEN cannot hide a regression.
func TestShapes(t *testing.T) {
	tests := []struct {
		file, event, code, status, id, sentAs string
		wantErr                               bool
	}{
		{file: "n101-mms", event: "sent", code: "N101", status: "Message Sent", sentAs: "MMS"},
		{file: "n102-delivered", event: "delivered", code: "N102", sentAs: "MMS"},
		{file: "fallback-n101-sms", event: "sent", code: "N101", sentAs: "SMS"},
		{file: "fallback-n202-mmsmt", event: "delivered", code: "N202", sentAs: "SMS"},
		{file: "fallback-n202-smsmt", event: "delivered", code: "N202"},
		{file: "e101-failed", event: "failed", code: "E101"},
		{file: "e102-expired", event: "undelivered", code: "E102", status: "Message Sent/Expired", sentAs: "MMS"},
		{file: "e102-notsupported", event: "undelivered", code: "E102", status: "Message Sent/NotSupported", sentAs: "MMS"},
		{file: "e202-fallback-failed", event: "undelivered", code: "E202", sentAs: "SMS"},
		{file: "n201-smsmt", event: "sent", code: "N201"},
		{file: "e201-smsmt", event: "failed", code: "E201"},
		{file: "n103-expired-v2", event: "undelivered", code: "N103", sentAs: "MMS"},
		{file: "legacy-1.3-attributes", event: "delivered", code: "N102", sentAs: "MMS"},
		{file: "iso-8859-1", event: "undelivered", code: "E102", sentAs: "MMS"},
		{file: "billion-laughs", wantErr: true},
		{file: "undefined-entity", wantErr: true},
		{file: "deep-nesting", wantErr: true},
		{file: "invalid-utf8", wantErr: true},
		{file: "junk", wantErr: true},
		{file: "truncated", wantErr: true},
		{file: "two-roots", wantErr: true},
		{file: "wrong-root", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			b, _ := os.ReadFile("testdata/" + tt.file + ".xml")
			g := outcome(b)
			if tt.wantErr {
				if g.Error == "" || strings.HasPrefix(g.Error, "not ErrMalformed") {
					t.Fatalf("%s: want ErrMalformed, got %+v", tt.file, g)
				}
				return
			}
			if len(g.Events) != 1 {
				t.Fatalf("%s: events = %+v", tt.file, g.Events)
			}
			e := g.Events[0]
			if e.Event != tt.event || e.Code != tt.code || (tt.status != "" && e.Status != tt.status) || e.SentAs != tt.sentAs {
				t.Errorf("%s: event = %+v", tt.file, e)
			}
		})
	}
	b, _ := os.ReadFile("testdata/iso-8859-1.xml")
	if g := outcome(b); !strings.Contains(g.Events[0].Details, "Rejeté par l'opérateur") {
		t.Errorf("ISO-8859-1 details = %q", g.Events[0].Details)
	}
	b, _ = os.ReadFile("testdata/batched-legacy.xml")
	if g := outcome(b); len(g.Events) != 2 || g.Events[0].Event != "sent" || g.Events[1].Handset != "nokia" || g.Events[1].TrackingID != "MMS_12346" {
		t.Errorf("batched legacy = %+v", g.Events)
	}
	b, _ = os.ReadFile("testdata/n003-template-encoded.xml")
	if g := outcome(b); len(g.Notices) != 1 || len(g.Events) != 0 {
		t.Errorf("N003 = %+v", g)
	}
}

// FuzzParse: no panic, bounded work, and a parsed notification re-encodes
// to a document that parses to the same notification.
func FuzzParse(f *testing.F) {
	files, _ := filepath.Glob("testdata/*.xml")
	for _, p := range files {
		b, _ := os.ReadFile(p)
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		notes, err := Parse(body)
		if err != nil {
			return
		}
		for _, n := range notes {
			again, err := Parse(n.Marshal())
			if err != nil {
				t.Fatalf("re-encoded notification does not parse: %v\n%s", err, n.Marshal())
			}
			if diff := cmp.Diff([]Notification{n}, again); diff != "" {
				t.Fatalf("round trip changed it (-first +second):\n%s", diff)
			}
		}
	})
}
