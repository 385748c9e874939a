package store

import (
	"context"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/mmsgate/mmsgate/pkg/delivery"
)

// EventCanceled is the terminal event of a cancel that won.
const EventCanceled = delivery.Canceled

// Why a cancel changed nothing (docs/request.md, "Cancel"). The caller logs
// and counts it; the application learns the outcome from the id's one
// terminal event.
const (
	CancelFinal   = "FINAL"   // the id already has its terminal state (a cancel's included)
	CancelClaimed = "CLAIMED" // a sender holds it right now: its call may be under way
	CancelInDoubt = "INDOUBT" // a call of it may have reached Skycore
	// CancelLater: the cancel cannot be decided yet (the id's scheduled
	// event is still being published, or the record kept changing); the
	// caller retries it shortly, as a transient failure.
	CancelLater = "LATER"
)

// CancelResult is what Cancel did.
type CancelResult struct {
	Won bool
	// Refused says why not, when !Won: CancelFinal, CancelClaimed,
	// CancelInDoubt or CancelLater.
	Refused string
	// Message is the record: after a win, CANCELED with its canceled event
	// pending and held by the owner (publish it as any recorded terminal
	// event, then EventSent); otherwise as found (a final one may still
	// need its event published: NeedsEvent).
	Message *Message
}

// Cancel makes msg#id final as CANCELED when no Skycore call of it can
// have reached Skycore and none is starting: an id never seen (the
// tombstone that its request, arriving later, finds final), a SCHEDULED
// one whose scheduled event is out (its schedule then never hands it off),
// or a RETRY one with no live claim whose every call surely failed (its
// history shows each attempt released as RETRY; an attempt in doubt, or
// one whose sender died, refuses). Otherwise nothing changes.
//
// Each decision is one conditional write on the state it was made on (the
// attempt count pins a RETRY record), so a claim, a hand-off or another
// cancel that moves first makes it decide again on the new state.
func (st *Store) Cancel(ctx context.Context, id, owner string, hold time.Time) (CancelResult, error) {
	const op = "store.Cancel"
	for range 4 {
		m, err := st.Get(ctx, id)
		if err != nil {
			return CancelResult{}, err
		}
		now := st.now()
		vals := map[string]types.AttributeValue{}
		var cond string
		switch {
		case m == nil:
			cond = "attribute_not_exists(#pk)"
		case m.Final():
			return CancelResult{Refused: CancelFinal, Message: m}, nil
		case m.State == StateScheduled:
			if m.PendingEvent != "" {
				return CancelResult{Refused: CancelLater, Message: m}, nil
			}
			cond = "#st = :sched AND attribute_not_exists(#evt)"
			vals[":sched"] = s(StateScheduled)
		case m.State == StateInProgress && m.Held(now):
			return CancelResult{Refused: CancelClaimed, Message: m}, nil
		case m.State == StateRetry && everyCallFailed(m):
			cond = "#st = :retry AND #att = :att"
			vals[":retry"], vals[":att"] = s(StateRetry), n(int64(m.Attempts))
		default: // INDOUBT, a dead claim, or a RETRY with an attempt in doubt
			return CancelResult{Refused: CancelInDoubt, Message: m}, nil
		}
		vals[":st"], vals[":evt"], vals[":owner"], vals[":hold"] = s(StateCanceled), s(EventCanceled), s(owner), n(hold.UnixMilli())
		vals[":now"], vals[":exp"], vals[":empty"] = s(st.stamp()), st.exp(), s("")
		it, ok, err := st.write(ctx, op, id,
			"SET #st = :st, #evt = :evt, #owner = :owner, #lease = :hold, #created = if_not_exists(#created, :now), "+
				"#acc = :now, #upd = :now, #exp = :exp, #code = :empty, #err = :empty REMOVE #shard, #due, #body, #doubt",
			cond, vals)
		if err != nil {
			return CancelResult{}, err
		}
		if ok {
			return CancelResult{Won: true, Message: decode(id, it)}, nil
		}
		// Someone moved first: decide again on what it left.
	}
	m, err := st.Get(ctx, id)
	return CancelResult{Refused: CancelLater, Message: m}, err
}

// everyCallFailed reports whether each of m's attempts ended released for a
// retry (its call surely failed, or was never made): then no call of it
// can have reached Skycore. An attempt missing from the history (its
// sender died) or ended in doubt may have; so may any, past the ring's
// HistorySlots.
func everyCallFailed(m *Message) bool {
	if m.Attempts > HistorySlots {
		return false
	}
	released := map[int]bool{}
	for _, h := range m.History {
		if h.By != "postback" {
			released[h.Attempt] = h.State == StateRetry
		}
	}
	for a := 1; a <= m.Attempts; a++ {
		if !released[a] {
			return false
		}
	}
	return true
}
