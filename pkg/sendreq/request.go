// Package sendreq is the send request of docs/request.md: its strict JSON
// decoding and every validation rule, each with the vendor code it names.
package sendreq

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"sort"
	"strings"

	"github.com/mmsgate/mmsgate/pkg/apperr"
)

// Request is one SQS message body.
type Request struct {
	ID              string            `json:"id"`
	To              string            `json:"to"`
	From            string            `json:"from,omitempty"`
	MMSID           MMSID             `json:"mmsId"`
	CampaignRef     string            `json:"campaignRef,omitempty"`
	OperatorID      string            `json:"operatorId,omitempty"`
	FromMask        string            `json:"fromMask,omitempty"`
	Subject         string            `json:"subject,omitempty"`
	Slides          []Slide           `json:"slides,omitempty"`
	Fallback        *Fallback         `json:"fallback,omitempty"`
	ForceSendAsSMS  bool              `json:"forceSendAsSms,omitempty"`
	ForcePassAsLink bool              `json:"forcePassAsLink,omitempty"`
	Data            map[string]string `json:"data,omitempty"`
	VCard           *VCard            `json:"vcard,omitempty"`

	// Metadata is the application's own: never sent to Skycore, echoed
	// verbatim in every event of this id. At most MaxMetadataValues string
	// values, keys of 1-64 of A-Z a-z 0-9 _ . : -, values of at most
	// MaxMetadataValue bytes, the object at most MaxMetadataBytes as JSON.
	Metadata map[string]string `json:"metadata,omitempty"`
	// SendAt, RFC 3339 with an offset, holds the Skycore call until then
	// (at most MaxSendAhead ahead; a past time sends now). SendTime parses
	// it. Kept as written so that a body re-encodes as it came.
	SendAt string `json:"sendAt,omitempty"`
	// ExpiresAt, RFC 3339 with an offset: no Skycore call starts at or
	// after it; a request not accepted by then ends expired. ExpiryTime
	// parses it.
	ExpiresAt string `json:"expiresAt,omitempty"`
	// Cancel marks the body {"id": X, "cancel": true}, nothing else: it
	// cancels id X (docs/request.md, "Cancel"), it sends nothing. false is
	// the same as absent.
	Cancel bool `json:"cancel,omitempty"`
}

// Slide is one CUSTOMTEXT.
type Slide struct {
	Slide int    `json:"slide"`
	Text  string `json:"text"`
}

// Fallback configures the SMS sent when the MMS cannot be.
type Fallback struct {
	Text        string `json:"text,omitempty"`
	Disabled    bool   `json:"disabled,omitempty"`
	DisableLink bool   `json:"disableLink,omitempty"`
}

// VCard is the DYNAMICVCARD.
type VCard struct {
	FirstName    string    `json:"firstName,omitempty"`
	LastName     string    `json:"lastName,omitempty"`
	Suffix       string    `json:"suffix,omitempty"`
	Organization string    `json:"organization,omitempty"`
	Title        string    `json:"title,omitempty"`
	Note         string    `json:"note,omitempty"`
	PhotoURL     string    `json:"photoUrl,omitempty"`
	Phones       []Phone   `json:"phones,omitempty"`
	Emails       []Email   `json:"emails,omitempty"`
	Addresses    []Address `json:"addresses,omitempty"`
}

// Phone is one vCard phone.
type Phone struct {
	Number string `json:"number"`
	Label  string `json:"label,omitempty"`
}

// Email is one vCard email address.
type Email struct {
	ID    string `json:"id"`
	Label string `json:"label,omitempty"`
}

// Address is one vCard physical address.
type Address struct {
	Address string `json:"address"`
	Label   string `json:"label,omitempty"`
}

// MMSID keeps the id as written (a JSON number or a string of digits), so
// that validation can say what was wrong with it.
type MMSID string

// UnmarshalJSON accepts a number or a string.
func (m *MMSID) UnmarshalJSON(b []byte) error {
	switch {
	case len(b) > 0 && b[0] == '"':
		var s string
		if err := json.Unmarshal(b, &s); err != nil {
			return err
		}
		*m = MMSID(s)
	case string(b) == "null":
	case len(b) > 0 && (b[0] == '-' || (b[0] >= '0' && b[0] <= '9')):
		*m = MMSID(b)
	default:
		return &json.UnmarshalTypeError{Value: "non-number", Type: reflect.TypeFor[MMSID]()}
	}
	return nil
}

// MarshalJSON writes a plain positive integer as a number, anything else as
// a string, so that decode → encode → decode is stable.
func (m MMSID) MarshalJSON() ([]byte, error) {
	if isPositiveInt(string(m)) && m[0] != '0' {
		return []byte(m), nil
	}
	return json.Marshal(string(m))
}

// ErrNotObject marks a body that is not JSON or not a JSON object: it cannot
// be trusted to carry an id.
var ErrNotObject = errors.New("body is not a JSON object")

// flagCodes are the vendor codes for a flag whose value is wrong.
var flagCodes = map[string]apperr.Code{
	"fallback.disabled":    "E652",
	"fallback.disableLink": "E652",
	"forceSendAsSms":       "E655",
}

// Decode parses one body strictly. It decodes field by field so that it can
// report every unknown or mistyped field, not only the first. The returned
// request is filled as far as possible even on error (the id, for the
// rejected event).
func Decode(body []byte) (*Request, error) {
	const op = "sendreq.Decode"
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(body, &fields); err != nil || fields == nil {
		if err == nil {
			err = errors.New("null")
		}
		return nil, &apperr.Error{Code: "E100", Class: apperr.Permanent, Op: op,
			Message: "body is not a JSON object: " + trimJSONErr(err), Err: ErrNotObject}
	}
	r := &Request{}
	targets := map[string]any{
		"id": &r.ID, "to": &r.To, "from": &r.From, "mmsId": &r.MMSID,
		"campaignRef": &r.CampaignRef, "operatorId": &r.OperatorID, "fromMask": &r.FromMask,
		"subject": &r.Subject, "slides": &r.Slides, "fallback": &r.Fallback,
		"forceSendAsSms": &r.ForceSendAsSMS, "forcePassAsLink": &r.ForcePassAsLink,
		"vcard": &r.VCard, "sendAt": &r.SendAt, "expiresAt": &r.ExpiresAt, "cancel": &r.Cancel,
	}
	names := make([]string, 0, len(fields))
	for name := range fields {
		names = append(names, name)
	}
	sort.Strings(names) // deterministic error order
	var errs []*apperr.Error
	for _, name := range names {
		if name == "data" || name == "metadata" {
			m, e := decodeStrings(op, name, fields[name])
			if name == "data" {
				r.Data = m
			} else {
				r.Metadata = m
			}
			errs = append(errs, e...)
			continue
		}
		dst, ok := targets[name]
		if !ok {
			errs = append(errs, &apperr.Error{Code: "E100", Class: apperr.Permanent, Op: op, Field: name, Message: "unknown field"})
			continue
		}
		if err := decodeStrict(fields[name], dst); err != nil {
			errs = append(errs, fieldError(op, name, err))
			continue
		}
		errs = append(errs, exactKeys(op, name, fields[name], reflect.TypeOf(dst).Elem())...)
	}
	if err := apperr.Join(errs); err != nil {
		return r, err
	}
	return r, nil
}

// decodeStrings decodes an object of strings (data, metadata) key by key so
// that an error names the key.
func decodeStrings(op, field string, raw json.RawMessage) (map[string]string, []*apperr.Error) {
	var m map[string]json.RawMessage
	if err := json.Unmarshal(raw, &m); err != nil {
		return nil, []*apperr.Error{{Code: "E100", Class: apperr.Permanent, Op: op, Field: field, Message: "must be an object of strings"}}
	}
	if m == nil {
		return nil, nil
	}
	var errs []*apperr.Error
	out := make(map[string]string, len(m))
	for k, v := range m {
		var s string
		if err := json.Unmarshal(v, &s); err != nil {
			errs = append(errs, &apperr.Error{Code: "E100", Class: apperr.Permanent, Op: op, Field: field + "." + k, Message: "value must be a string"})
			continue
		}
		out[k] = s
	}
	sort.Slice(errs, func(i, j int) bool { return errs[i].Field < errs[j].Field })
	return out, errs
}

// exactKeys rejects keys that encoding/json matched only case-insensitively
// ("firstname" for "firstName"): the contract's names are exact.
func exactKeys(op, path string, raw json.RawMessage, t reflect.Type) []*apperr.Error {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch t.Kind() {
	case reflect.Slice:
		var items []json.RawMessage
		if json.Unmarshal(raw, &items) != nil {
			return nil
		}
		var errs []*apperr.Error
		for i, it := range items {
			errs = append(errs, exactKeys(op, fmt.Sprintf("%s[%d]", path, i), it, t.Elem())...)
		}
		return errs
	case reflect.Struct:
		var obj map[string]json.RawMessage
		if json.Unmarshal(raw, &obj) != nil {
			return nil
		}
		known := make(map[string]reflect.Type, t.NumField())
		for i := 0; i < t.NumField(); i++ {
			f := t.Field(i)
			name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
			known[name] = f.Type
		}
		keys := make([]string, 0, len(obj))
		for k := range obj {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		var errs []*apperr.Error
		for _, k := range keys {
			ft, ok := known[k]
			if !ok {
				errs = append(errs, &apperr.Error{Code: "E100", Class: apperr.Permanent, Op: op, Field: path + "." + k, Message: "unknown field"})
				continue
			}
			errs = append(errs, exactKeys(op, path+"."+k, obj[k], ft)...)
		}
		return errs
	}
	return nil
}

func decodeStrict(raw json.RawMessage, dst any) error {
	d := json.NewDecoder(bytes.NewReader(raw))
	d.DisallowUnknownFields()
	return d.Decode(dst)
}

// fieldError names the field at fault, nested path included.
func fieldError(op, name string, err error) *apperr.Error {
	field := name
	var te *json.UnmarshalTypeError
	msg := trimJSONErr(err)
	if errors.As(err, &te) {
		if te.Field != "" {
			field = name + "." + te.Field
		}
		msg = fmt.Sprintf("wrong type: got %s, want %s", te.Value, jsonKind(te))
	} else if after, ok := strings.CutPrefix(msg, "unknown field "); ok {
		msg = "unknown field " + after
	}
	code := apperr.Code("E100")
	if c, ok := flagCodes[field]; ok {
		code = c
	}
	if name == "mmsId" {
		code = "E620"
	}
	return &apperr.Error{Code: code, Class: apperr.Permanent, Op: op, Field: field, Message: msg}
}

func jsonKind(te *json.UnmarshalTypeError) string {
	if te.Type == nil || te.Type == reflect.TypeFor[MMSID]() {
		return "a number or a string of digits"
	}
	switch te.Type.Kind().String() {
	case "bool":
		return "boolean"
	case "string":
		return "string"
	case "int", "int64", "float64":
		return "number"
	case "slice":
		return "array"
	case "map", "struct", "ptr":
		return "object"
	}
	return te.Type.String()
}

func trimJSONErr(err error) string {
	return strings.TrimPrefix(err.Error(), "json: ")
}

// PeekID reads the id of a body that may not decode: any non-empty string,
// valid or not (an over-long id still tells the application which request
// failed); "" when there is none. Callers that need a usable id check
// ValidID.
func PeekID(body []byte) string {
	// A map, not a struct: encoding/json matches struct fields without
	// regard to case, and "ID" must not name the request "id" names.
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(body, &fields); err != nil {
		return peekDeep(body) // well-formed but too deep for encoding/json
	}
	var id string
	if json.Unmarshal(fields["id"], &id) != nil {
		return ""
	}
	return id
}
