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
		val := "4821" + string(rune('0'+i)) // numeric, so mmsId keeps it
		switch f := v.Field(i); {
		case f.Kind() == reflect.String:
			f.SetString(val)
		case f.Type() == reflect.TypeOf(map[string]string(nil)):
			f.Set(reflect.ValueOf(map[string]string{"k" + val: val}))
		default:
			t.Fatalf("About.%s: teach this test its kind", v.Type().Field(i).Name)
		}
	}
	ev := New(Delivered, a, time.Unix(0, 0))
	if diff := cmp.Diff(a, ev.About()); diff != "" {
		t.Errorf("About through New (-want +got):\n%s", diff)
	}
	if ev.Event != Delivered || ev.OccurredAt != "1970-01-01T00:00:00.000Z" {
		t.Errorf("event %q at %q", ev.Event, ev.OccurredAt)
	}
	for _, c := range []struct {
		name string
		a, b About
		want About
	}{
		{"strings", About{To: "a", MMSID: "1"}, About{To: "b", From: "c", MMSID: "2"}, About{To: "a", From: "c", MMSID: "1"}},
		{"metadata from b", About{ID: "x"}, About{Metadata: map[string]string{"k": "v"}}, About{ID: "x", Metadata: map[string]string{"k": "v"}}},
		{"metadata of a kept", About{Metadata: map[string]string{"k": "a"}}, About{Metadata: map[string]string{"k": "b", "j": "c"}}, About{Metadata: map[string]string{"k": "a"}}},
	} {
		if diff := cmp.Diff(c.want, c.a.Or(c.b)); diff != "" {
			t.Errorf("Or %s (-want +got):\n%s", c.name, diff)
		}
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
