package delivery

import (
	"reflect"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// TestNewAbout: every field of About reaches the event New builds and
// comes back through Event.About; a field added to About and not carried
// fails here (each is set to a value of its own by reflection).
func TestNewAbout(t *testing.T) {
	var a About
	v := reflect.ValueOf(&a).Elem()
	for i := range v.NumField() {
		if v.Field(i).Kind() != reflect.String {
			t.Fatalf("About.%s: teach this test its kind", v.Type().Field(i).Name)
		}
		v.Field(i).SetString("4821" + string(rune('0'+i))) // numeric, so mmsId keeps it
	}
	ev := New(Delivered, a, time.Unix(0, 0))
	if diff := cmp.Diff(a, ev.About()); diff != "" {
		t.Errorf("About through New (-want +got):\n%s", diff)
	}
	if ev.Event != Delivered || ev.OccurredAt != "1970-01-01T00:00:00.000Z" {
		t.Errorf("event %q at %q", ev.Event, ev.OccurredAt)
	}
	if got := (About{To: "a", MMSID: "1"}).Or(About{To: "b", From: "c", MMSID: "2"}); got != (About{To: "a", From: "c", MMSID: "1"}) {
		t.Errorf("Or = %+v", got)
	}
}

// TestVocabulary: each kind is known once, and terminal, final and
// receipt say what docs/events.md says.
func TestVocabulary(t *testing.T) {
	seen := map[string]bool{}
	var terminal, final, receipt []string
	for _, k := range Kinds() {
		if seen[k] || !Known(k) {
			t.Errorf("kind %q listed twice or not known", k)
		}
		seen[k] = true
		if Terminal(k) {
			terminal = append(terminal, k)
		}
		if Final(k) {
			final = append(final, k)
		}
		if Receipt(k) {
			receipt = append(receipt, k)
		}
	}
	for _, c := range []struct {
		name      string
		got, want []string
	}{
		{"terminal", terminal, []string{Accepted, Rejected, Expired, Canceled}},
		{"final", final, []string{Delivered, Undelivered, Failed}},
		{"receipt", receipt, []string{Sent, Delivered, Undelivered, Failed}},
	} {
		if diff := cmp.Diff(c.want, c.got); diff != "" {
			t.Errorf("%s kinds (-want +got):\n%s", c.name, diff)
		}
	}
	if Known("") || Known("cancelled") || Rank(Unconfirmed) != 0 || Rank(Sent) >= Rank(Delivered) {
		t.Errorf("unknown kinds or ranks wrong")
	}
}
