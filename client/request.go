package client

import (
	"errors"
	"fmt"

	"github.com/mmsgate/mmsgate/pkg/sendreq"
)

// The send request of docs/request.md. These are aliases of the types the
// sender decodes, so a request built here is the request the sender reads:
// json.Marshal of a Request is the message body.
type (
	Request  = sendreq.Request  // one send request (one SQS message body)
	Slide    = sendreq.Slide    // one CUSTOMTEXT: slide 1-8 and its text
	Fallback = sendreq.Fallback // the SMS sent when the MMS cannot be
	VCard    = sendreq.VCard    // the DYNAMICVCARD
	Phone    = sendreq.Phone    // one vCard phone
	Email    = sendreq.Email    // one vCard email address
	Address  = sendreq.Address  // one vCard physical address
	MMSID    = sendreq.MMSID    // the saved MMS's id, digits ("48211")
)

// Policy is the deployment's part of validation. Set it to what the sender
// is deployed with: DefaultFrom = SKYCORE_DEFAULT_FROM,
// EnforceCampaignCheck = SKYCORE_ENFORCE_CAMPAIGN_CHECK.
type Policy = sendreq.Policy

// ErrInvalid marks a request that breaks a rule of docs/request.md: the sender
// would reject it. apperr.All on the error lists every violated field, each
// an *apperr.Error with its Code, Field and Message.
var ErrInvalid = errors.New("invalid send request")

// Validate applies the defaults of p and checks req with the sender's own
// code (sendreq.ApplyDefaults and Validate), so a request that passes here
// fails in the sender only if the deployment's policy differs from p. It
// returns the request as it will be enqueued: FROM filled from
// p.DefaultFrom when empty, leading zeros of mmsId dropped, `to` and the
// vCard's phone numbers as digits ("+1 (774) 319-9144" is 17743199144).
// req itself is not changed (its vCard, if any, is copied before its
// numbers are rewritten). Advice the vendor gives (req.Warnings) is not an
// error: the sender lists it in the accepted event.
//
// The error wraps ErrInvalid and every violation: errors.Is(err,
// ErrInvalid) tells it apart, apperr.All(err) lists the fields.
func Validate(req Request, p Policy) (Request, error) {
	if req.VCard != nil {
		// ApplyDefaults rewrites the phone numbers in place: not the caller's.
		vc := *req.VCard
		vc.Phones = append([]Phone(nil), vc.Phones...)
		req.VCard = &vc
	}
	req.ApplyDefaults(p)
	if err := req.Validate(p); err != nil {
		return req, fmt.Errorf("%w %q: %w", ErrInvalid, req.ID, err)
	}
	return req, nil
}
