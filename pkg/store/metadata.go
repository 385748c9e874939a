package store

import (
	"encoding/json"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
)

// A request's metadata (docs/request.md) is kept as its JSON object, a
// String attribute md: on msg#<id> (Claim, RecordSchedule) and on
// trk#<trackingId> (Link, or PostbackDone when the link had none), so that
// every event of the id carries it whichever item its publisher reads, and
// the postback function's one read of trk# (Joined) has it. Absent when the
// request had none (an empty object is none: DynamoDB stand-ins refuse
// empty strings, and the event omits it alike).
const mdAttr = "md"

// mdJSON is md as stored; "" when there is none.
func mdJSON(md map[string]string) string {
	if len(md) == 0 {
		return ""
	}
	b, err := json.Marshal(md)
	if err != nil { // a map of strings always encodes
		return ""
	}
	return string(b)
}

// mdOf reads the md attribute of it; nil when absent or unreadable.
func mdOf(it map[string]types.AttributeValue) map[string]string {
	v := str(it, mdAttr)
	if v == "" {
		return nil
	}
	var md map[string]string
	if json.Unmarshal([]byte(v), &md) != nil || len(md) == 0 {
		return nil
	}
	return md
}
