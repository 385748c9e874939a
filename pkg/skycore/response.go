package skycore

import (
	"bytes"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/mmsgate/mmsgate/pkg/charset"
)

// Response is Skycore's <RESPONSE>.
type Response struct {
	XMLName       xml.Name `xml:"RESPONSE" json:"-"`
	Status        string   `xml:"STATUS"`
	MMSID         string   `xml:"MMSID,omitempty"`
	TrackingID    string   `xml:"TRACKINGID,omitempty"`
	To            string   `xml:"TO,omitempty"`
	From          string   `xml:"FROM,omitempty"`
	StatusDetails string   `xml:"STATUSDETAILS,omitempty"`
	ErrorCode     string   `xml:"ERRORCODE,omitempty"`
	ErrorInfo     string   `xml:"ERRORINFO,omitempty"`
}

// Status values.
const (
	StatusSuccess = "Success"
	StatusFailure = "Failure"
)

// ErrNotResponse means the body is not a <RESPONSE> document.
var ErrNotResponse = errors.New("not a RESPONSE document")

// ParseResponse reads a <RESPONSE> by element name, children in any order;
// unknown children are ignored. Values are trimmed (ERRORINFO may start with
// a space).
func ParseResponse(body []byte) (*Response, error) {
	if r, ok := parseFast(body); ok {
		if r.Status == "" {
			return nil, fmt.Errorf("%w: no STATUS", ErrNotResponse)
		}
		return r, nil
	}
	return parseXML(body)
}

// parseXML is the general path, for every shape parseFast declines.
func parseXML(body []byte) (*Response, error) {
	d := xml.NewDecoder(bytes.NewReader(body))
	d.CharsetReader = charset.NewReader
	var r Response
	if err := d.Decode(&r); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, fmt.Errorf("%w: empty body", ErrNotResponse)
		}
		return nil, fmt.Errorf("%w: %v", ErrNotResponse, err)
	}
	for _, s := range []*string{&r.Status, &r.MMSID, &r.TrackingID, &r.To, &r.From, &r.StatusDetails, &r.ErrorCode, &r.ErrorInfo} {
		*s = strings.TrimSpace(*s)
	}
	if r.Status == "" {
		return nil, fmt.Errorf("%w: no STATUS", ErrNotResponse)
	}
	return &r, nil
}

// Marshal re-encodes the response (the fuzz round-trip and the simulator).
func (r *Response) Marshal() []byte {
	b, err := xml.Marshal(r)
	if err != nil { // only strings: cannot fail
		panic(err)
	}
	return b
}
