package skycore

// Answers that say Skycore took the request, however odd their form.

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/xml"
	"fmt"
	"strings"

	"github.com/mmsgate/mmsgate/pkg/apperr"
	"github.com/mmsgate/mmsgate/pkg/charset"
)

// Evidence is what a lenient reading of an answer finds about whether
// Skycore took the request: every STATUS, ERRORCODE and TRACKINGID
// element at any depth under any root, as far as the body can be read (a
// body cut at MaxResponse too).
type Evidence struct {
	Statuses    []string
	ErrorCodes  []string // the non-empty ones
	TrackingIDs []string // the non-empty ones
}

// maxEvidence bounds each list and maxScanTokens the reading: an answer is a
// handful of elements, anything more is a page that has said enough.
const (
	maxEvidence   = 8
	maxScanTokens = 4096
)

// ScanAnswer reads body leniently (never an error: what cannot be read is
// not evidence).
func ScanAnswer(body []byte) Evidence {
	var ev Evidence
	d := xml.NewDecoder(bytes.NewReader(body))
	d.Strict = false
	d.CharsetReader = charset.NewReader
	var stack []string
	var text strings.Builder
	for range maxScanTokens {
		tok, err := d.RawToken() // RawToken: no end-tag matching, so a broken page still reads
		if err != nil {
			break
		}
		switch t := tok.(type) {
		case xml.StartElement:
			stack = append(stack, strings.ToUpper(t.Name.Local))
			text.Reset()
		case xml.CharData:
			if len(stack) > 0 && text.Len() < MaxResponse {
				text.Write(t)
			}
		case xml.EndElement:
			if len(stack) == 0 {
				continue
			}
			name := stack[len(stack)-1]
			stack = stack[:len(stack)-1]
			ev.add(name, strings.TrimSpace(text.String()))
			text.Reset()
		}
	}
	// A body cut inside an element: what it had read so far counts.
	if len(stack) > 0 {
		ev.add(stack[len(stack)-1], strings.TrimSpace(text.String()))
	}
	return ev
}

func (ev *Evidence) add(name, v string) {
	var list *[]string
	switch name {
	case "STATUS":
		list = &ev.Statuses
	case "ERRORCODE":
		list = &ev.ErrorCodes
	case "TRACKINGID":
		list = &ev.TrackingIDs
	default:
		return
	}
	if (v != "" || name == "STATUS") && len(*list) < maxEvidence {
		*list = append(*list, v)
	}
}

// SaysSuccess reports whether any STATUS says Success.
func (ev Evidence) SaysSuccess() bool {
	for _, s := range ev.Statuses {
		if strings.EqualFold(s, StatusSuccess) {
			return true
		}
	}
	return false
}

// Taken reports whether the answer says Skycore took the request: a STATUS
// that says Success, or a tracking id (which only a Success carries).
func (ev Evidence) Taken() bool { return ev.SaysSuccess() || len(ev.TrackingIDs) > 0 }

// clean reports whether the answer says Success and nothing else: every
// STATUS Success, no ERRORCODE, at most one distinct tracking id.
func (ev Evidence) clean() bool {
	for _, s := range ev.Statuses {
		if !strings.EqualFold(s, StatusSuccess) {
			return false
		}
	}
	for _, t := range ev.TrackingIDs {
		if t != ev.TrackingIDs[0] {
			return false
		}
	}
	return len(ev.Statuses) > 0 && len(ev.ErrorCodes) == 0
}

// repeats reports, without allocating, whether raw may hold more than one
// STATUS, ERRORCODE or TRACKINGID element (an element's name appears twice,
// in its start and end tags; STATUSDETAILS contains STATUS). A false alarm
// only costs a ScanAnswer.
func repeats(raw []byte) bool {
	return bytes.Count(raw, []byte("STATUS"))-bytes.Count(raw, []byte("STATUSDETAILS")) > 2 ||
		bytes.Count(raw, []byte("ERRORCODE")) > 2 || bytes.Count(raw, []byte("TRACKINGID")) > 2
}

// ambiguous is the error of an answer that says Skycore took the request
// and something else too: the call is in doubt (MaybeSent), never a plain
// failure, never a rejection. Err holds what was found, redacted, for the
// log; Message, which reaches events, holds none of the answer.
func ambiguous(op string, status int, why string, ev Evidence, raw []byte, apiKey string) *apperr.Error {
	var trk []string
	for _, t := range ev.TrackingIDs {
		sum := sha256.Sum256([]byte(t))
		trk = append(trk, fmt.Sprintf("%d bytes sha256 %s", len(t), hex.EncodeToString(sum[:8])))
	}
	var st, codes []string
	for _, s := range ev.Statuses {
		st = append(st, snippet([]byte(s), apiKey))
	}
	for _, c := range ev.ErrorCodes {
		codes = append(codes, snippet([]byte(c), apiKey))
	}
	detail := redact(fmt.Sprintf("HTTP %d; STATUS %q; ERRORCODE %q; TRACKINGID %q; answer (%d bytes): %s",
		status, st, codes, trk, len(raw), snippet(raw, apiKey)), apiKey)
	return &apperr.Error{Code: apperr.CodeAmbiguous, Class: apperr.Retry, Op: op,
		Message: why + "; in doubt: waiting for a postback before sending again", Err: errorString(detail)}
}

type errorString string

func (e errorString) Error() string { return string(e) }
