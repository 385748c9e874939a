// Package receipt is the receipt-check function: an accepted request that
// gets no final receipt (delivered, undelivered, failed) within
// RECEIPT_WINDOW (default 24h, 0 off) gets exactly one `unconfirmed`
// delivery event, with its last known state in status ("sent" after an
// N101/N201, else "accepted"). Many carriers never send an MMS delivery
// receipt, so without it such a message would stay `sent` forever. A
// receipt that comes later still produces its own event: unconfirmed is
// not a rank, and it never moves the state.
//
// # How a check is scheduled
//
// When the sender (or the postback function, for an acceptance a
// postback proved) is about to publish a request's `accepted` event, it
// first sends one message to the internal queue RECEIPT_QUEUE_URL
// (Scheduler.Schedule):
//
//	{"id": "order-1", "trackingId": "DrXAFP-Ylpc-JZL", "due": "2026-11-25T21:02:12.031Z"}
//
// with DelaySeconds = min(window, 15 min), SQS's longest delay. If that
// send fails, the accepted event is not published and stays pending on
// the record: the next delivery publishes it and schedules again. Two
// checks of one request are harmless (the check is idempotent). Requests
// accepted without a tracking id (NO_TRACKINGID) are scheduled too; nothing
// can confirm them, so they get `unconfirmed` with status "accepted".
//
// Only the sender and postback roles may send to that queue (IAM, and a
// queue policy that denies every other principal): a message on it makes
// the function publish an event, so applications must not be able to
// write there. Even so a message is trusted for nothing but "look at this
// id again": the request's state, its tracking id and its due
// (acceptance + RECEIPT_WINDOW, which the function reads too) come from
// its record; a check of an id that is not a request id, or that has no
// record, is dropped (InvalidCheck, CheckDropped) and creates nothing; a
// body's due can delay a check, never hasten it; a tracking id in the body
// that the record does not name is ignored (CheckMismatch).
//
// A request accepted without a usable tracking id (NO_TRACKINGID, or one
// too long to key) has its postbacks joined through CLIENT_REFERENCE: the
// first one to join notes its tracking id on msg#<id> (pbTrk,
// store.NoteReceiptTracking), and the check then looks at that tracking
// item like any other. A note waits while a check publishes unconfirmed
// on msg#<id>, so the receipt's event follows it, never races it.
//
// # What a check does (Handler)
//
// The function consumes the queue through an SQS event source mapping
// with ReportBatchItemFailures. For each record:
//
//   - before due: ChangeMessageVisibility to min(due-now, 12h-1min) and
//     report it as a batch item failure, so that SQS hands it back then
//     (12 hours is SQS's longest visibility, counted from the receive; a
//     24h window takes three receives: at 15 min, ~12h15m and 24h);
//   - at or after due: read msg#<id> (for to, from, mmsId; a request whose
//     accepted event is still pending waits, so `unconfirmed` never goes
//     out before `accepted`), then store.CheckReceipt decides atomically
//     on trk#<trackingId>: only if no final receipt was recorded (rank < 2),
//     no `unconfirmed` was published, and the tracking id's emitter slot is
//     free (the slot postbacks use, so a postback's event and the
//     unconfirmed event never race to the queue), it sets the pending
//     marker and takes the slot. The winner publishes `unconfirmed`, then
//     marks it published and frees the slot (ReceiptDone); on a publish
//     failure it clears the marker and frees the slot (ReceiptRelease) and
//     the record comes back in 30 s. A busy slot (a postback being
//     published) brings the record back in 5-30 s. A final receipt, or
//     `unconfirmed` already out, ends the check. A request without a
//     usable tracking id is marked on msg#<id> instead.
//
// A check that dies after publishing but before marking it leaves the
// marker pending: after its 30 s hold the next receive publishes it again
// (at least once, like every other event), never after a final receipt's
// event.
//
// # Why a delayed SQS message (and not the alternatives)
//
// Costs per million accepted messages with the default 24h window, at
// us-east-1 list prices (SQS $0.40 per million requests; Lambda $0.20 per
// million invocations; DynamoDB on-demand per request unit):
//
//   - This design. SQS: 1 SendMessage, 3 receives, 2
//     ChangeMessageVisibility and 1 delete per message: at most 7 requests,
//     $2.80 per million messages when every batch holds one message; at
//     volume the event source mapping receives and deletes up to 10 at a
//     time, about 3.4 requests, $1.40. In general 1 send + ~ceil(window/12h)+1
//     receives, as many visibility changes minus one, and a delete. Lambda:
//     at most 3 invocations per message ($0.60 per million messages,
//     less with batching; 128 MB arm64 for a few ms each adds about $0.10).
//     DynamoDB: at due, three consistent GetItems (the record, its
//     tracking item, read again by the decision) and one conditional
//     UpdateItem (a second one when it publishes), about 3 RRU and 1-2
//     WRU. No index, no extra item, nothing written per message before
//     due. Total about $3-5 per million messages, less at volume.
//   - A scheduled sweeper over a sparse time-bucketed GSI: every accepted
//     message writes its due bucket into the index (1 GSI write) and
//     removes it on its final receipt or when swept (1 base write + 1 GSI
//     write), whether or not it ever needs a check; a sweeper function
//     runs every minute and queries the current buckets (eventually
//     consistent reads), then does the same conditional write as ours.
//     Similar cost (about $2-3 per million plus 43,200 sweeper runs a
//     month), but the GSI is eventually consistent, one bucket per minute
//     is a hot partition at volume (the writes must be sharded and every
//     shard queried), a sweeper that falls behind must page through a
//     backlog, and lateness is the sweep period (a minute) plus the index
//     lag. memdb and dynalite would need GSI support for `make dev`.
//   - EventBridge Scheduler one-time schedules: $1.00 per million schedule
//     invocations (after a monthly free tier) plus a CreateSchedule call per
//     message and a DeleteSchedule per confirmed message (or
//     ActionAfterCompletion DELETE), each counted against the
//     CreateSchedule rate quota; the target (an SQS send or a Lambda
//     invoke) is still needed on top, so about $2-3 per million. One
//     schedule resource per message in flight (a regional quota of
//     schedules), 60-second precision, and no local stand-in that fires
//     schedules for `make dev`.
//   - DynamoDB TTL with Streams: deletions and stream reads are free, but
//     "DynamoDB typically deletes expired items within two days of
//     expiration" (UpdateTimeToLive, Amazon DynamoDB API Reference,
//     https://docs.aws.amazon.com/amazondynamodb/latest/APIReference/API_UpdateTimeToLive.html;
//     the Developer Guide's Time to Live page says within a few days): an
//     `unconfirmed` event days late is no use, and it would need a
//     separate timer item per message (msg#'s exp is the 30-day retention).
//
// # Lateness
//
// SQS delays and visibility timeouts are whole seconds; the event source
// mapping long-polls all the time, so a message that becomes visible is
// usually handed to the function within a second or two. On top of that:
// a tracking id whose slot a postback holds waits 5-30 s per try (a live
// postback invocation holds it for at most its 10 s timeout, a dead one
// for its 30 s hold: about a minute at worst); a store or publish failure
// waits 30 s per try; a request whose accepted event is still pending
// waits for the sender's next delivery (rare: minutes). So `unconfirmed`
// goes out seconds after due in normal operation, and under a minute
// with contention; ReceiptCheckLate (seconds between due and publish)
// measures it. The queue keeps messages 14 days, far more than the
// longest window (7 days), and its redrive to a dead-letter queue
// (alarmed) is only a backstop for a check that keeps crashing.
package receipt
