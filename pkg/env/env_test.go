package env

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// TestReader: values and defaults come back, and every problem is
// reported at once, in reading order.
func TestReader(t *testing.T) {
	vars := map[string]string{"A": "a", "D": "90s", "BAD_D": "soon", "ZERO": "0", "N": "7", "BAD_N": "0", "F": "2.5",
		"BAD_F": "-1", "B": "true", "BAD_B": "maybe", "L": " e110 ,e114,", "NONE": "none"}
	r := New(func(k string) string { return vars[k] })
	var a, missing string
	r.Required(Var{"A", &a}, Var{"MISSING", &missing})
	got := []any{a, r.Duration("D", time.Second, false), r.Duration("BAD_D", time.Second, false), r.Duration("ZERO", time.Second, true),
		r.Duration("ZERO", time.Second, false), r.Duration("UNSET", time.Minute, false),
		r.Int("N", 1, 1, 10), r.Int("BAD_N", 1, 1, 10), r.Float("F", 0), r.Float("BAD_F", 3), r.Bool("B", false), r.Bool("BAD_B", true),
		r.List("L", nil), r.List("NONE", []string{"X"}), r.List("UNSET", []string{"X"}), r.String("UNSET", "def")}
	want := []any{"a", 90 * time.Second, time.Second, time.Duration(0), time.Second, time.Minute, 7, 1, 2.5, 3.0, true, true,
		[]string{"E110", "E114"}, []string(nil), []string{"X"}, "def"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("values (-want +got):\n%s", diff)
	}
	r.Fail(nil)
	r.Fail(errors.New("a rule across two"))
	var names []string
	for _, line := range strings.Split(r.Err().Error(), "\n") {
		names = append(names, strings.FieldsFunc(line, func(c rune) bool { return c == '=' || c == ' ' })[0])
	}
	if diff := cmp.Diff([]string{"MISSING", "BAD_D", "ZERO", "BAD_N", "BAD_F", "BAD_B", "a"}, names); diff != "" {
		t.Errorf("problems (-want +got):\n%s\n%v", diff, r.Err())
	}
}
