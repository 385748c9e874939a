package skycore

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/xml"
	"errors"
	"fmt"
	"html"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"

	"github.com/mmsgate/mmsgate/pkg/apperr"
)

// formKeys covers every character class a key could hold: URL-reserved
// (+ / = & % ?), XML-special (< > " '), spaces, and non-ASCII.
var formKeys = []string{
	"Ab+Cd/Ef=Gh+Ij/Kl==",
	"key&with<xml>\"quotes'and%25percent",
	"spaces in the key +/= tail",
	"ключ-πß€𝄞-unicode+/=",
	"plain-0123456789abcdefghijKLMN",
	"a%2Bb+c?d#e;f,g:h@i$j!k*l(m)n",
}

var hexEscape = regexp.MustCompile(`%[0-9A-F]{2}`)

// testForms are the encodings a request could show the key in, built here
// independently of the code under test.
func testForms(key string) map[string]string {
	var xe bytes.Buffer
	xml.EscapeText(&xe, []byte(key))
	named := strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;", `"`, "&quot;", "'", "&apos;").Replace(key)
	forms := map[string]string{
		"raw": key, "xml named entities": named, "encoding/xml": xe.String(), "html": html.EscapeString(key),
		"query": url.QueryEscape(key), "path": url.PathEscape(key),
		"query of the XML text": url.QueryEscape(named), "query twice": url.QueryEscape(url.QueryEscape(key)),
	}
	for _, name := range []string{"query", "path", "query of the XML text", "query twice"} {
		if f := forms[name]; f != key {
			forms[name+", lower hex"] = hexEscape.ReplaceAllStringFunc(f, strings.ToLower)
		}
	}
	return forms
}

// leaks reports the longest piece (8 characters or more) of form in s.
func leaks(s, form string) string {
	for n := len(form); n >= 8; n-- {
		for i := 0; i+n <= len(form); i++ {
			if strings.Contains(s, form[i:i+n]) {
				return form[i : i+n]
			}
		}
	}
	return ""
}

// echoTransport answers every call with body, as a proxy or an error page would.
type echoTransport string

func (b echoTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	return &http.Response{StatusCode: http.StatusBadRequest, Header: http.Header{"Content-Type": {"text/html"}},
		Body: io.NopCloser(strings.NewReader(string(b))), Request: r}, nil
}

func checkNoLeak(t *testing.T, key, page string, forms map[string]string) {
	t.Helper()
	for _, raw := range []string{page, "<RESPONSE><STATUS>Failure</STATUS><ERRORCODE>E110</ERRORCODE><ERRORINFO>" + page + "</ERRORINFO></RESPONSE>"} {
		c := New("http://skycore.invalid"+prefix, WithHTTPClient(&http.Client{Transport: echoTransport(raw)}))
		_, err := c.SendSavedMMS(context.Background(), key, request())
		e, ok := apperr.As(err)
		if !ok {
			t.Fatalf("%v", err)
		}
		for _, s := range []string{e.Message, err.Error(), fmt.Sprint(errors.Unwrap(err))} {
			for name, f := range forms {
				if l := leaks(s, f); l != "" {
					t.Fatalf("key %q: %q of its %s form leaks in %q (page %q)", key, l, name, s, raw)
				}
			}
		}
	}
}

// TestKeyEncodingsNeverLeak: an answer (or a proxy's page) echoing the
// key in any form the request carried it, URL-encoded either way with
// upper or lower hex, XML- or HTML-escaped, at any offset, leaks no part
// of it into the error (the text behind the retrying event, the logs, the
// DLQ attribute, `mmsgate status`, `redrive --dry-run`).
func TestKeyEncodingsNeverLeak(t *testing.T) {
	for _, key := range formKeys {
		forms := testForms(key)
		for name, f := range forms {
			for _, off := range []int{0, 1, 2, 50, 100, 110, 119} {
				page := "Bad request: " + strings.Repeat("x", off) + f + " tail"
				t.Run(fmt.Sprintf("%s/%s/%d", key[:4], name, off), func(t *testing.T) { checkNoLeak(t, key, page, forms) })
			}
		}
	}
}

// TestKeyInBase64OfTheFormNeverLeaks: a proxy that echoes the form body
// base64-encoded, at any alignment.
func TestKeyInBase64OfTheFormNeverLeaks(t *testing.T) {
	for _, key := range formKeys {
		var doc bytes.Buffer
		AppendRequest(&doc, key, request())
		body := "xml=" + url.QueryEscape(doc.String())
		enc := url.QueryEscape(strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;", `"`, "&quot;", "'", "&apos;").Replace(key))
		p := strings.Index(body, enc)
		if p < 0 {
			t.Fatalf("key %q: %q not in the body", key, enc)
		}
		for pad := range 3 {
			for _, b64 := range []*base64.Encoding{base64.StdEncoding, base64.URLEncoding} {
				stream := strings.Repeat("-", pad) + body
				all := b64.EncodeToString([]byte(stream))
				start := p + pad
				i0 := (3 - start%3) % 3
				m := (len(enc) - i0) / 3
				seg := all[(start+i0)/3*4 : (start+i0)/3*4+4*m]
				page := all[max(0, (start+i0)/3*4-6) : (start+i0)/3*4+4*m+6]
				t.Run(fmt.Sprintf("%s/pad%d", key[:4], pad), func(t *testing.T) {
					checkNoLeak(t, key, "echo "+page, map[string]string{"base64 of the form": seg})
				})
			}
		}
	}
}
