package sendreq

import (
	"encoding/json"
	"reflect"
	"time"
)

// The fields of docs/request.md that are mmsgate's own, never sent to
// Skycore: metadata, sendAt, expiresAt, and the cancel body. Their limits
// are mmsgate's (docs/codes.md, "mmsgate's own limits"); a violation is
// E100 with the field named.
const (
	MaxMetadataValues = 16
	MaxMetadataKey    = 64
	MaxMetadataValue  = 512  // bytes
	MaxMetadataBytes  = 4096 // the object as JSON
	MaxSendAhead      = 35 * 24 * time.Hour
)

// SendTime is SendAt parsed; ok is false when there is none or it does not
// parse (Validate reports that).
func (r *Request) SendTime() (t time.Time, ok bool) { return parseTime(r.SendAt) }

// ExpiryTime is ExpiresAt parsed; ok is false when there is none or it does
// not parse.
func (r *Request) ExpiryTime() (t time.Time, ok bool) { return parseTime(r.ExpiresAt) }

// parseTime reads RFC 3339 with an offset ("Z" or ±hh:mm), which
// time.RFC3339 requires.
func parseTime(s string) (time.Time, bool) {
	if s == "" {
		return time.Time{}, false
	}
	t, err := time.Parse(time.RFC3339, s)
	return t, err == nil
}

func (p Policy) now() time.Time {
	if p.Now != nil {
		return p.Now()
	}
	return time.Now()
}

// validateCancel: a cancel carries its id and nothing else.
func (r *Request) validateCancel(v *validator, p Policy) {
	if !p.Scheduling {
		v.add("E100", "cancel", "is not supported by this deployment")
		return
	}
	rest := *r
	rest.ID, rest.Cancel = "", false
	if !reflect.ValueOf(rest).IsZero() {
		v.add("E100", "cancel", `a cancel is {"id": ..., "cancel": true} and nothing else`)
	}
}

// validateExtras checks metadata, sendAt and expiresAt.
func (r *Request) validateExtras(v *validator, p Policy) {
	if r.Metadata != nil {
		r.validateMetadata(v)
	}
	for _, f := range []struct{ name, value string }{{"sendAt", r.SendAt}, {"expiresAt", r.ExpiresAt}} {
		if f.value == "" {
			continue
		}
		if !p.Scheduling {
			// Refused rather than ignored: a deployment that cannot hold a
			// request must not send it early.
			v.add("E100", f.name, "is not supported by this deployment")
			continue
		}
		if _, ok := parseTime(f.value); !ok {
			v.add("E100", f.name, "must be an RFC 3339 time with an offset, such as 2026-12-24T09:00:00-05:00")
		}
	}
	if t, ok := r.SendTime(); ok && p.Scheduling && t.After(p.now().Add(MaxSendAhead)) {
		v.add("E100", "sendAt", "is more than %d days ahead", int(MaxSendAhead/(24*time.Hour)))
	}
}

func (r *Request) validateMetadata(v *validator) {
	if len(r.Metadata) > MaxMetadataValues {
		v.add("E100", "metadata", "holds more than %d values", MaxMetadataValues)
		return
	}
	first := len(v.errs)
	for k, val := range r.Metadata {
		switch {
		case k == "" || len(k) > MaxMetadataKey || !metadataKey(k):
			v.add("E100", "metadata."+k, "key must be 1-%d characters of A-Z a-z 0-9 _ . : -", MaxMetadataKey)
		case len(val) > MaxMetadataValue:
			v.add("E100", "metadata."+k, "value is over %d bytes", MaxMetadataValue)
		}
	}
	sortFrom(v.errs[first:])
	if len(v.errs) == first {
		if b, err := json.Marshal(r.Metadata); err != nil || len(b) > MaxMetadataBytes {
			v.add("E100", "metadata", "is over %d bytes as JSON", MaxMetadataBytes)
		}
	}
}

func metadataKey(k string) bool {
	for i := 0; i < len(k); i++ {
		c := k[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '.' || c == ':' || c == '-') {
			return false
		}
	}
	return true
}

// MetadataOK reports whether md keeps metadata's limits, as Validate
// checks them: only metadata that does is kept and echoed (an event never
// carries a refused object).
func MetadataOK(md map[string]string) bool {
	v := &validator{}
	(&Request{Metadata: md}).validateMetadata(v)
	return len(v.errs) == 0
}
