package apigw

import (
	"net/http/httptest"
	"strings"
	"testing"
)

func TestMatch(t *testing.T) {
	tests := []struct {
		path  string
		ok    bool
		token string
	}{
		{"/skycore/postbacks/abc", true, "abc"},
		{"/skycore/postbacks/abc/", true, "abc"},
		{"/skycore/postbacks/", false, ""},
		{"/skycore/postbacks/a/b", false, ""},
		{"/other/postbacks/abc", false, ""},
	}
	for _, tt := range tests {
		t.Run(tt.path, func(t *testing.T) {
			p, ok := match("/skycore/postbacks/{token}", tt.path)
			if ok != tt.ok || p["token"] != tt.token {
				t.Errorf("match(%q) = %v, %v; want %q, %v", tt.path, p, ok, tt.token, tt.ok)
			}
		})
	}
}

// TestEventBodies: as API Gateway, text bodies pass as text, the rest base64.
func TestEventBodies(t *testing.T) {
	tests := map[string]bool{ // content type → base64
		"text/xml":                          false,
		"text/plain; charset=utf-8":         false,
		"application/xml":                   false,
		"application/json":                  false,
		"application/x-www-form-urlencoded": true,
		"":                                  true,
		"application/octet-stream":          true,
	}
	for ct, b64 := range tests {
		t.Run(ct, func(t *testing.T) {
			r := httptest.NewRequest("POST", "/skycore/postbacks/t?x=1", strings.NewReader("<A/>"))
			if ct != "" {
				r.Header.Set("Content-Type", ct)
			}
			r.Header.Set("X-Custom", "v")
			ev := Event(r, Route{Method: "ANY", Path: "/skycore/postbacks/{token}"}, map[string]string{"token": "t"}, []byte("<A/>"), "id")
			if ev.IsBase64Encoded != b64 || (b64 && ev.Body != "PEEvPg==") || (!b64 && ev.Body != "<A/>") {
				t.Errorf("body = %q (base64 %v)", ev.Body, ev.IsBase64Encoded)
			}
			if ev.Version != "2.0" || ev.RouteKey != "ANY /skycore/postbacks/{token}" || ev.Headers["x-custom"] != "v" ||
				ev.QueryStringParameters["x"] != "1" || ev.RequestContext.HTTP.Method != "POST" {
				t.Errorf("event = %+v", ev)
			}
		})
	}
}
