package apperr

import (
	"errors"
	"fmt"
	"net/http"
	"testing"
)

func TestHTTPStatus(t *testing.T) {
	tests := map[string]struct {
		err  error
		want int
	}{
		"nil":          {nil, http.StatusOK},
		"forbidden":    {&Error{Code: CodeForbidden}, http.StatusForbidden},
		"method":       {&Error{Code: CodeMethod}, http.StatusMethodNotAllowed},
		"too large":    {&Error{Code: CodeTooLarge}, http.StatusRequestEntityTooLarge},
		"malformed":    {&Error{Code: CodeMalformed}, http.StatusOK},
		"unavailable":  {&Error{Code: CodeUnavailable}, http.StatusServiceUnavailable},
		"busy":         {&Error{Code: CodeBusy}, http.StatusServiceUnavailable},
		"timeout":      {&Error{Code: CodeTimeout}, http.StatusServiceUnavailable},
		"internal":     {&Error{Code: CodeInternal}, http.StatusInternalServerError},
		"vendor code":  {&Error{Code: "E110"}, http.StatusInternalServerError},
		"plain error":  {errors.New("boom"), http.StatusInternalServerError},
		"wrapped code": {fmt.Errorf("ctx: %w", &Error{Code: CodeForbidden}), http.StatusForbidden},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			if got := HTTPStatus(tt.err); got != tt.want {
				t.Errorf("HTTPStatus(%v) = %d, want %d", tt.err, got, tt.want)
			}
		})
	}
	// Every code in the status table is covered above.
	for code := range statuses {
		if code == "" {
			t.Error("empty code in table")
		}
	}
}

func TestCodeAndClassOf(t *testing.T) {
	tests := map[string]struct {
		err       error
		wantCode  Code
		wantClass Class
	}{
		"coded":   {&Error{Code: "E113", Class: Retry}, "E113", Retry},
		"wrapped": {fmt.Errorf("x: %w", &Error{Code: "E110", Class: Permanent}), "E110", Permanent},
		"plain":   {errors.New("x"), CodeInternal, Unclassified},
		"bare":    {&Error{Code: "E1"}, "E1", Unclassified},
		"joined":  {Join([]*Error{Invalid("E621", "to", "x"), Invalid("E620", "mmsId", "y")}), "E621", Permanent},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			if got := CodeOf(tt.err); got != tt.wantCode {
				t.Errorf("CodeOf = %s, want %s", got, tt.wantCode)
			}
			if got := ClassOf(tt.err); got != tt.wantClass {
				t.Errorf("ClassOf = %s, want %s", got, tt.wantClass)
			}
		})
	}
}

func TestAllAndJoin(t *testing.T) {
	if Join(nil) != nil {
		t.Fatal("Join(nil) must be nil")
	}
	err := Join([]*Error{Invalid("E621", "to", "is required"), Invalid("E620", "mmsId", "is required")})
	all := All(fmt.Errorf("wrap: %w", err))
	if len(all) != 2 || all[0].Field != "to" || all[1].Field != "mmsId" {
		t.Fatalf("All = %v", all)
	}
	if got, want := err.Error(), "E621 to: is required; E620 mmsId: is required"; got != want {
		t.Errorf("Error() = %q, want %q", got, want)
	}
}

func TestClassString(t *testing.T) {
	for c, want := range map[Class]string{Unclassified: "unclassified", Permanent: "permanent", Retry: "retry", Config: "config"} {
		if c.String() != want {
			t.Errorf("%d.String() = %q, want %q", c, c.String(), want)
		}
	}
}

// TestTransient: what nobody classified is retried, like Retry; nothing
// else is.
func TestTransient(t *testing.T) {
	tests := map[string]struct {
		err  error
		want bool
	}{
		"retry":        {&Error{Class: Retry}, true},
		"unclassified": {errors.New("x"), true},
		"permanent":    {&Error{Class: Permanent}, false},
		"config":       {&Error{Class: Config}, false},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			if got := Transient(tt.err); got != tt.want {
				t.Errorf("Transient(%v) = %v, want %v", tt.err, got, tt.want)
			}
		})
	}
}

func ExampleError() {
	err := Invalid("E110", "to", "must be an international number")
	fmt.Println(err, CodeOf(err), ClassOf(err))
	// Output: E110 to: must be an international number E110 permanent
}

func ExampleHTTPStatus() {
	fmt.Println(HTTPStatus(&Error{Code: CodeForbidden}), HTTPStatus(&Error{Code: CodeMalformed}))
	// Output: 403 200
}
