package store

import "github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

// ThrottleKey is the one item of the account's shared Skycore throughput
// (pkg/throttle), in the messages table beside the records: a row of the
// item table above, to be added there when this file is merged:
//
//	rate#skycore       tatUs           the next free call slot (unix µs): the
//	  (the account's                   slots before it are leased, each to one
//	  throughput)                      instance, each usable only at its time
//	                   floor,cutMs     the shared rate after the last E113 cut
//	                                   and when it was cut; it recovers
//	                                   additively from then, computed, not written
//
// It has no exp: it is rewritten at every lease and must not expire. No
// message id can collide with it (those are msg#<id>).
const ThrottleKey = "rate#skycore"

// ThrottleItemKey is ThrottleKey as the table's key.
func ThrottleItemKey() map[string]types.AttributeValue {
	return map[string]types.AttributeValue{"pk": s(ThrottleKey)}
}
