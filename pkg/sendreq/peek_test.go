package sendreq

import (
	"strings"
	"testing"
)

// TestPeekIDTooDeep: a well-formed body nested deeper than encoding/json
// allows still names its id; a broken one names none.
func TestPeekIDTooDeep(t *testing.T) {
	deep := strings.Repeat("[", 10001) + strings.Repeat("]", 10001)
	tests := []struct{ name, body, want string }{
		{"plain", `{"id":"a-1","to":"1"}`, "a-1"},
		{"deep after the id", `{"id":"deep-1","data":{"k":` + deep + `}}`, "deep-1"},
		{"deep before the id", `{"data":{"k":` + deep + `},"id":"deep-2"}`, "deep-2"},
		{"nested id is not the id", `{"data":{"id":"inner"},"x":` + deep + `}`, ""},
		{"id in an array is not the id", `{"x":["id","y"],"z":` + deep + `}`, ""},
		{"last id wins", `{"id":"first","id":"second","x":` + deep + `}`, "second"},
		{"non-string last id", `{"id":"first","id":5,"x":` + deep + `}`, ""},
		{"object id", `{"id":{"a":"b"},"x":` + deep + `}`, ""},
		{"broken after the id", `{"id":"b-1","x":` + deep[:20000] + `}`, ""},
		{"trailing data", `{"id":"t-1","x":` + deep + `} {}`, ""},
		{"not an object", deep, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := PeekID([]byte(tt.body)); got != tt.want {
				t.Errorf("PeekID = %q, want %q", got, tt.want)
			}
		})
	}
}

// FuzzPeekDeep: never panics; on a body encoding/json reads, it agrees
// with PeekID's map path.
func FuzzPeekDeep(f *testing.F) {
	f.Add([]byte(`{"id":"a","b":[{"id":"c"}],"id":"d"}`))
	f.Add([]byte(`{"id":5}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		deep := peekDeep(body)
		if want := PeekID(body); deep != want && deep != "" {
			t.Fatalf("peekDeep = %q, PeekID = %q on %q", deep, want, body)
		}
	})
}
