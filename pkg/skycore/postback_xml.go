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

// Notification is one postback (docs/vendor.md), every element as given
// ("" when absent).
type Notification struct {
	Origin          string `xml:"ORIGIN,omitempty" json:"origin,omitempty"`
	Code            string `xml:"CODE,omitempty" json:"code,omitempty"`
	Status          string `xml:"STATUS,omitempty" json:"status,omitempty"`
	SentAs          string `xml:"SENTAS,omitempty" json:"sentAs,omitempty"`
	MMSID           string `xml:"MMSID,omitempty" json:"mmsId,omitempty"`
	From            string `xml:"FROM,omitempty" json:"from,omitempty"`
	FromMask        string `xml:"FROM_MASK,omitempty" json:"fromMask,omitempty"`
	To              string `xml:"TO,omitempty" json:"to,omitempty"`
	TrackingID      string `xml:"TRACKINGID,omitempty" json:"trackingId,omitempty"`
	SPID            string `xml:"SPID,omitempty" json:"spid,omitempty"`
	Timestamp       string `xml:"TIMESTAMP,omitempty" json:"timestamp,omitempty"`
	Handset         string `xml:"HANDSET,omitempty" json:"handset,omitempty"`
	AggregatorID    string `xml:"AGGREGATORID,omitempty" json:"aggregatorId,omitempty"`
	StatusDetails   string `xml:"STATUSDETAILS,omitempty" json:"statusDetails,omitempty"`
	ClientReference string `xml:"CLIENT_REFERENCE,omitempty" json:"clientReference,omitempty"`
	AudioName       string `xml:"AUDIONAME,omitempty" json:"audioName,omitempty"`
	VideoName       string `xml:"VIDEONAME,omitempty" json:"videoName,omitempty"`
}

// Limits on untrusted XML; a postback is a dozen short elements.
const (
	MaxPostbackBody = 64 << 10
	maxDepth        = 8
	maxTokens       = 4096
	maxNotifs       = 100
	maxFieldLength  = 2048
)

// ErrMalformedPostback marks a postback body that can never be processed.
var ErrMalformedPostback = errors.New("malformed postback")

// element is a bounded generic tree.
type element struct {
	name     string
	text     strings.Builder
	children []*element
}

// ParsePostback reads one postback document: <POSTBACK> with the notification's
// elements, or the obsolete batched form with <NOTIFICATION> children
// (ORIGIN, CODE and a BODY holding the rest). Unknown elements are
// ignored, any element may be absent, root attributes are ignored, a
// declared ISO-8859-1 or windows-1252 encoding is decoded. DOCTYPEs and
// entities other than XML's five are refused, so nothing expands.
func ParsePostback(body []byte) ([]Notification, error) {
	root, err := parseTree(body)
	if err != nil {
		return nil, err
	}
	if root.name != "POSTBACK" {
		return nil, fmt.Errorf("%w: root element is %q, not POSTBACK", ErrMalformedPostback, root.name)
	}
	var batched []*element
	for _, c := range root.children {
		if c.name == "NOTIFICATION" {
			batched = append(batched, c)
		}
	}
	if len(batched) == 0 {
		return []Notification{fillNotification(Notification{}, root)}, nil
	}
	if len(batched) > maxNotifs {
		return nil, fmt.Errorf("%w: more than %d notifications", ErrMalformedPostback, maxNotifs)
	}
	out := make([]Notification, 0, len(batched))
	for _, nt := range batched {
		n := fillNotification(Notification{}, nt)
		for _, c := range nt.children {
			if c.name != "BODY" {
				continue
			}
			if len(c.children) > 0 {
				n = fillNotification(n, c)
				continue
			}
			// Some old payloads carried the body as escaped XML text.
			if inner := strings.TrimSpace(c.text.String()); strings.HasPrefix(inner, "<") {
				sub, err := parseTree([]byte(inner))
				if err != nil {
					return nil, err
				}
				n = fillNotification(n, sub)
			}
		}
		out = append(out, n)
	}
	return out, nil
}

// fillNotification sets n's fields from e's leaf children.
func fillNotification(n Notification, e *element) Notification {
	for _, c := range e.children {
		if len(c.children) > 0 {
			continue
		}
		v := strings.TrimSpace(c.text.String())
		if len(v) > maxFieldLength {
			v = v[:maxFieldLength]
		}
		switch c.name {
		case "ORIGIN":
			n.Origin = v
		case "CODE":
			n.Code = strings.ToUpper(v)
		case "STATUS":
			n.Status = v
		case "SENTAS":
			n.SentAs = v
		case "MMSID":
			n.MMSID = v
		case "FROM":
			n.From = v
		case "FROM_MASK":
			n.FromMask = v
		case "TO":
			n.To = v
		case "TRACKINGID":
			n.TrackingID = v
		case "SPID":
			n.SPID = v
		case "TIMESTAMP":
			n.Timestamp = v
		case "HANDSET":
			n.Handset = v
		case "AGGREGATORID":
			n.AggregatorID = v
		case "STATUSDETAILS":
			n.StatusDetails = v
		case "CLIENT_REFERENCE":
			n.ClientReference = v
		case "AUDIONAME":
			n.AudioName = v
		case "VIDEONAME":
			n.VideoName = v
		}
	}
	return n
}

func parseTree(doc []byte) (*element, error) {
	return boundedTree(doc, ErrMalformedPostback, maxTokens, maxDepth, maxFieldLength)
}

// boundedTree reads doc into a generic tree, refusing (with fail) more
// than maxTok tokens, nesting deeper than maxDepth, directives (DOCTYPE:
// no entity expansion) and anything but one root; an element's text is
// kept up to twice maxField. The one reader of Skycore's postback XML,
// delivery and inbound alike.
func boundedTree(doc []byte, fail error, maxTok, maxDepth, maxField int) (*element, error) {
	d := xml.NewDecoder(bytes.NewReader(doc))
	d.CharsetReader = charset.NewReader
	var stack []*element
	var root *element
	for tokens := 0; ; tokens++ {
		if tokens > maxTok {
			return nil, fmt.Errorf("%w: more than %d tokens", fail, maxTokens)
		}
		tok, err := d.RawToken()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("%w: %v", fail, err)
		}
		switch t := tok.(type) {
		case xml.StartElement:
			if len(stack) >= maxDepth {
				return nil, fmt.Errorf("%w: nested deeper than %d", fail, maxDepth)
			}
			e := &element{name: t.Name.Local}
			if len(stack) == 0 {
				if root != nil {
					return nil, fmt.Errorf("%w: more than one root element", fail)
				}
				root = e
			} else {
				p := stack[len(stack)-1]
				p.children = append(p.children, e)
			}
			stack = append(stack, e)
		case xml.EndElement:
			if len(stack) == 0 || stack[len(stack)-1].name != t.Name.Local {
				return nil, fmt.Errorf("%w: mismatched </%s>", fail, t.Name.Local)
			}
			stack = stack[:len(stack)-1]
		case xml.CharData:
			if len(stack) > 0 {
				if cur := stack[len(stack)-1]; cur.text.Len() < maxField*2 {
					cur.text.Write(t)
				}
			} else if len(bytes.TrimSpace(t)) > 0 {
				return nil, fmt.Errorf("%w: text outside the root element", fail)
			}
		case xml.Directive:
			return nil, fmt.Errorf("%w: DOCTYPE or other directive refused", fail)
		}
	}
	if root == nil || len(stack) != 0 {
		return nil, fmt.Errorf("%w: no complete root element", fail)
	}
	return root, nil
}

// Marshal re-encodes n as a single postback document.
func (n Notification) Marshal() []byte {
	b, err := xml.Marshal(struct {
		XMLName xml.Name `xml:"POSTBACK"`
		Notification
	}{Notification: n})
	if err != nil { // only strings: cannot fail
		panic(err)
	}
	return b
}
