// Package metric names every CloudWatch metric mmsgate writes (EMF,
// namespace mmsgate, dimension Function): the one vocabulary that the
// functions count with, and that the template's alarms and dashboard
// (template_test.go) and README's list are checked against.
package metric

// The send-mms function's.
const (
	Accepted            = "Accepted"
	Rejected            = "Rejected"
	Expired             = "Expired"
	Retried             = "Retried"
	InDoubt             = "InDoubt"
	Duplicate           = "Duplicate" // a delivery of an id already final
	Suppressed          = "Suppressed"
	SuppressionAdded    = "SuppressionAdded"
	SkycoreLatency      = "SkycoreLatency" // milliseconds
	UnknownCode         = "UnknownCode"
	NoTrackingID        = "NoTrackingID"
	ForgedHandoff       = "ForgedHandoff"
	BookkeepingDeferred = "BookkeepingDeferred"
	HandoffDeadLettered = "HandoffDeadLettered"
	SentTwice           = "SentTwice"
	SecretUnavailable   = "SecretUnavailable"
	AmbiguousAnswer     = "AmbiguousAnswer" // an answer that says Skycore took it and something else: in doubt
	RetryingSkipped     = "RetryingSkipped" // a retrying event left out: too little of its claim left to publish it in order
	RequestWarning      = "RequestWarning"  // an accepted request's warning, with dimension Code
)

// The send-mms function's shared Skycore throughput (pkg/throttle), per
// invocation of an instance that has SKYCORE_RATE_LIMIT on.
const (
	ThroughputExceeded = "ThroughputExceeded" // E113 answers
	ThrottleCut        = "ThrottleCut"        // E113 cuts of the shared rate this instance made
	ThrottleRate       = "ThrottleRate"       // the shared rate as this instance saw it, calls per second
	ThrottleLeases     = "ThrottleLeases"     // leases of slots (one DynamoDB write each)
	ThrottleContended  = "ThrottleContended"  // leases lost to another instance's write
	ThrottleForfeited  = "ThrottleForfeited"  // leased slots dropped unused (an E113, a deadline)
	ThrottleSlots      = "ThrottleSlots"      // slots leased (ThrottleSlots / ThrottleLeases: calls per write)
	ThrottleGap        = "ThrottleGap"        // milliseconds the shared schedule ran dry before this instance restarted it
)

// The send-mms function's scheduling and cancels (docs/request.md).
const (
	Scheduled     = "Scheduled"     // a request with a future sendAt taken in
	Canceled      = "Canceled"      // a cancel that won
	CancelRefused = "CancelRefused" // a cancel that changed nothing (with dimension Reason)
)

// The schedule-sweep function's.
const (
	ScheduledHandedOff  = "ScheduledHandedOff"
	ScheduleSweepFailed = "ScheduleSweepFailed"
)

// The postback function's.
const (
	Postbacks           = "Postbacks" // with dimension Code
	Duplicates          = "Duplicates"
	Rejected403         = "Rejected403"
	TemplateNotice      = "TemplateNotice" // with dimension Code
	Unjoined            = "Unjoined"
	JoinWait            = "JoinWait"
	AcceptedByPostback  = "AcceptedByPostback"
	LateReceipt         = "LateReceipt"
	UnjoinedCapped      = "UnjoinedCapped"      // notifications of one postback past MaxUnjoined, acknowledged unwritten
	UnkeyableTrackingID = "UnkeyableTrackingID" // a tracking id too long to key
)

// The postback function's, for inbound (MO) messages.
const (
	Inbound          = "Inbound"          // an inbound message recorded (its copies count as Duplicates)
	InboundMalformed = "InboundMalformed" // an inbound postback that can never be processed, acknowledged
	OptOuts          = "OptOuts"          // an opt-out keyword that changed the suppression list
	OptIns           = "OptIns"           // an opt-in keyword that changed the suppression list
)

// The receipt-check function's.
const (
	Unconfirmed      = "Unconfirmed"
	ReceiptCheckLate = "ReceiptCheckLate" // seconds
	InvalidCheck     = "InvalidCheck"     // a check naming no valid request id
	CheckDropped     = "CheckDropped"     // a check of a missing or not accepted record
	CheckMismatch    = "CheckMismatch"    // a check naming another tracking id than its record
)

// More than one function's.
const (
	ConfigError           = "ConfigError"
	Malformed             = "Malformed"
	StoreError            = "StoreError"
	LinkConflict          = "LinkConflict"
	LinkFailed            = "LinkFailed"
	EventUnmarked         = "EventUnmarked" // published, but the record still says pending: a later taker may publish it again
	ReceiptScheduleFailed = "ReceiptScheduleFailed"
)

// Dimensions lists, for each metric that has them, its dimensions besides
// Function (only a CloudWatch SEARCH finds those).
var Dimensions = map[string][]string{Postbacks: {"Code"}, TemplateNotice: {"Code"}, CancelRefused: {"Reason"}, RequestWarning: {"Code"}}

// All lists every metric name above.
var All = []string{
	Accepted, Rejected, Expired, Retried, InDoubt, Duplicate, Suppressed, SuppressionAdded, SkycoreLatency,
	UnknownCode, NoTrackingID, ForgedHandoff, BookkeepingDeferred, HandoffDeadLettered, SentTwice, SecretUnavailable,
	RequestWarning,
	Postbacks, Duplicates, Rejected403, TemplateNotice, Unjoined, JoinWait, AcceptedByPostback, LateReceipt, UnjoinedCapped, UnkeyableTrackingID,
	Inbound, InboundMalformed, OptOuts, OptIns,
	Unconfirmed, ReceiptCheckLate, InvalidCheck, CheckDropped, CheckMismatch,
	ConfigError, Malformed, StoreError, LinkConflict, LinkFailed, EventUnmarked, ReceiptScheduleFailed,
	AmbiguousAnswer, RetryingSkipped,
	ThroughputExceeded, ThrottleCut, ThrottleRate, ThrottleLeases, ThrottleContended, ThrottleForfeited,
	ThrottleSlots, ThrottleGap,
	Scheduled, Canceled, CancelRefused, ScheduledHandedOff, ScheduleSweepFailed,
}
