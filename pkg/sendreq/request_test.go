package sendreq

import (
	"encoding/json"
	"errors"
	"os"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/mmsgate/mmsgate/pkg/apperr"
)

// violation is what a test expects of one *apperr.Error.
type violation struct {
	Code  apperr.Code
	Field string
}

func violations(err error) []violation {
	var out []violation
	for _, e := range apperr.All(err) {
		out = append(out, violation{e.Code, e.Field})
	}
	return out
}

func TestDecode(t *testing.T) {
	tests := []struct {
		name   string
		body   string
		want   []violation
		notObj bool
	}{
		{name: "valid", body: `{"id":"a","to":"17743199144","mmsId":1}`},
		{name: "mmsId as string", body: `{"id":"a","mmsId":"48211"}`},
		{name: "null fields are absent", body: `{"id":"a","subject":null,"vcard":null}`},
		{name: "not JSON", body: `hello`, want: []violation{{"E100", ""}}, notObj: true},
		{name: "array", body: `[{"id":"a"}]`, want: []violation{{"E100", ""}}, notObj: true},
		{name: "string", body: `"id"`, want: []violation{{"E100", ""}}, notObj: true},
		{name: "null", body: `null`, want: []violation{{"E100", ""}}, notObj: true},
		{name: "empty", body: ``, want: []violation{{"E100", ""}}, notObj: true},
		{name: "truncated", body: `{"id":"a"`, want: []violation{{"E100", ""}}, notObj: true},
		{name: "unknown fields, all reported", body: `{"id":"a","subjet":"x","mmsid":1}`,
			want: []violation{{"E100", "mmsid"}, {"E100", "subjet"}}},
		{name: "unknown nested field", body: `{"vcard":{"nickname":"x"}}`, want: []violation{{"E100", "vcard"}}},
		{name: "nested key in wrong case", body: `{"vcard":{"firstname":"x","phones":[{"Number":"1"}]}}`,
			want: []violation{{"E100", "vcard.firstname"}, {"E100", "vcard.phones[0].Number"}}},
		{name: "fallback key in wrong case", body: `{"fallback":{"Text":"x"}}`, want: []violation{{"E100", "fallback.Text"}}},
		{name: "wrong type names the field", body: `{"to":17743199144}`, want: []violation{{"E100", "to"}}},
		{name: "wrong nested type", body: `{"slides":[{"slide":"1","text":"a"}]}`, want: []violation{{"E100", "slides.slide"}}},
		{name: "disabled not boolean", body: `{"fallback":{"disabled":"yes"}}`, want: []violation{{"E652", "fallback.disabled"}}},
		{name: "disableLink not boolean", body: `{"fallback":{"disableLink":1}}`, want: []violation{{"E652", "fallback.disableLink"}}},
		{name: "forceSendAsSms not boolean", body: `{"forceSendAsSms":"true"}`, want: []violation{{"E655", "forceSendAsSms"}}},
		{name: "forcePassAsLink not boolean", body: `{"forcePassAsLink":"yes"}`, want: []violation{{"E100", "forcePassAsLink"}}},
		{name: "mmsId boolean", body: `{"mmsId":true}`, want: []violation{{"E620", "mmsId"}}},
		{name: "data value not string", body: `{"data":{"b":"ok","a":1}}`, want: []violation{{"E100", "data.a"}}},
		{name: "data not object", body: `{"data":["a"]}`, want: []violation{{"E100", "data"}}},
		{name: "two problems at once", body: `{"to":1,"forceSendAsSms":"x"}`,
			want: []violation{{"E655", "forceSendAsSms"}, {"E100", "to"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Decode([]byte(tt.body))
			if diff := cmp.Diff(tt.want, violations(err)); diff != "" {
				t.Errorf("Decode(%q) violations (-want +got):\n%s\nerr: %v", tt.body, diff, err)
			}
			if got := errors.Is(err, ErrNotObject); got != tt.notObj {
				t.Errorf("Decode(%q): errors.Is(err, ErrNotObject) = %v, want %v", tt.body, got, tt.notObj)
			}
		})
	}
}

func TestDecodeKeepsID(t *testing.T) {
	r, err := Decode([]byte(`{"id":"keep-me","bogus":1}`))
	if err == nil || r == nil || r.ID != "keep-me" {
		t.Fatalf("Decode = %+v, %v; want the id kept with an error", r, err)
	}
}

func TestPeekID(t *testing.T) {
	tests := map[string]struct{ body, want string }{
		"object":        {`{"id":"a-1","x":1}`, "a-1"},
		"invalid id":    {`{"id":"a b"}`, "a b"}, // readable, so the rejected event can name it
		"id not str":    {`{"id":5}`, ""},
		"not JSON":      {`{"id":"a-1"`, ""},
		"no id":         {`{"to":"1"}`, ""},
		"array":         {`["id"]`, ""},
		"too long id":   {`{"id":"` + strings.Repeat("a", 65) + `"}`, strings.Repeat("a", 65)},
		"64 chars kept": {`{"id":"` + strings.Repeat("a", 64) + `"}`, strings.Repeat("a", 64)},
		"other case":    {`{"ID":"victim-1"}`, ""}, // only "id" names the request (Decode is exact too)
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			if got := PeekID([]byte(tt.body)); got != tt.want {
				t.Errorf("PeekID(%q) = %q, want %q", tt.body, got, tt.want)
			}
		})
	}
}

func TestMMSIDRoundTrip(t *testing.T) {
	tests := map[string]string{"number": `48211`, "string": `"48211"`, "leading zero": `"007"`, "float": `1.5`, "neg": `-3`}
	for name, in := range tests {
		t.Run(name, func(t *testing.T) {
			var m MMSID
			if err := json.Unmarshal([]byte(in), &m); err != nil {
				t.Fatal(err)
			}
			out, err := json.Marshal(m)
			if err != nil {
				t.Fatal(err)
			}
			var m2 MMSID
			if err := json.Unmarshal(out, &m2); err != nil || m2 != m {
				t.Errorf("MMSID %s → %s → %q, want %q (%v)", in, out, m2, m, err)
			}
		})
	}
}

// FuzzDecode: whatever decodes cleanly re-encodes and decodes to the same
// request; nothing panics.
func FuzzDecode(f *testing.F) {
	for _, name := range []string{"contract-example", "full-vcard", "unicode", "metacharacters", "every-flag"} {
		if b, err := os.ReadFile("../skycore/testdata/" + name + ".json"); err == nil {
			f.Add(b)
		}
	}
	f.Add([]byte(`{"id":"a","mmsId":"1","data":{"x":"y"}}`))
	f.Add([]byte(`[1,2]`))
	f.Add([]byte(`{"id":"p","to":"+1 (774) 319-9144","mmsId":1,"vcard":{"lastName":"A","phones":[{"number":"+1 (800) 555-0100"}]}}`))
	f.Add([]byte(`{"id":"m","to":"1","mmsId":1,"metadata":{"orderId":"8812"},"sendAt":"2026-12-24T09:00:00-05:00","expiresAt":"x"}`))
	f.Add([]byte(`{"id":"c","cancel":true}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		r, err := Decode(body)
		if err != nil {
			if len(apperr.All(err)) == 0 {
				t.Fatalf("Decode error without a coded error: %v", err)
			}
			return
		}
		_ = r.Validate(Policy{DefaultFrom: "1"})
		out, err := json.Marshal(r)
		if err != nil {
			t.Fatalf("Marshal: %v", err)
		}
		r2, err := Decode(out)
		if err != nil {
			t.Fatalf("re-decode of %s: %v", out, err)
		}
		if diff := cmp.Diff(r, r2, cmpopts.EquateEmpty()); diff != "" {
			t.Fatalf("round trip changed the request (-first +second):\n%s", diff)
		}
	})
}
