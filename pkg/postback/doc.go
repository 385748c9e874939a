// Package postback is the postback function: Skycore's delivery postbacks
// (docs/vendor.md) arriving through API Gateway → authenticated,
// de-duplicated delivery events (docs/events.md, docs/postback.md).
//
// # Reading a request
//
// The path token is compared in constant time with postback_token from
// the secret named by POSTBACK_SECRET_ID (the function never holds the API
// key, even when a local secret has both). The body, base64-decoded when
// API Gateway says so, is sniffed: one that starts with '<' (after
// whitespace and a UTF-8 BOM) is XML whatever its Content-Type says;
// otherwise the xml= form field. A postback that can never be processed
// (not XML, unknown CODE, no TRACKINGID, a tracking id longer than a
// DynamoDB key can hold) gets 200 and is logged and counted (Malformed):
// Skycore's retry would not fix it.
//
// # Order and de-duplication (trk#<trackingId>, pkg/store)
//
// store.Postback decides each postback with conditional updates on the
// tracking item: a postback of a higher rank (sent 1, final 2) advances
// the state and is emitted; a lower or equal one is history (no event).
// One postback of a tracking id is emitted at a time (the item's emitter
// slot, held 30 s, longer than the function's 10 s timeout), so two events
// of one tracking id never race to the queue. An advance whose event was
// never confirmed is resumed by Skycore's retry only while its rank is
// still the item's: once a higher state went out it becomes history. So
// the stream never moves back, whatever the order of failures and
// retries. An invocation that answers 5xx first releases what it holds
// (the slot; a request's pending event), so a retry right after succeeds
// as soon as the cause is gone.
//
// # Joining a postback to its request id
//
// The id is the one the sender linked to the tracking id at acceptance,
// else the postback's CLIENT_REFERENCE when it is a valid request id. A
// postback's own event never goes out before its request's terminal send
// event (accepted, or rejected/expired as recorded), so before publishing
// it the handler reads msg#<id> (one consistent GetItem per tracking id:
// once it has seen the record final with nothing pending, it marks the
// tracking item settled and later postbacks skip the read) and:
//
//   - no record: with a linked id, the record has expired and the id is
//     used; with only a CLIENT_REFERENCE, it names no request of ours and
//     the event goes out at once with "id": "" (counted, Unjoined);
//   - open (INPROGRESS, RETRY, INDOUBT: the sender's call timed out, its
//     sender died mid-call, or its answer is still on the way): the
//     postback proves Skycore accepted it. store.AcceptByPostback records
//     the acceptance with this tracking id; the winner links the tracking
//     id, publishes the accepted event (from the record; to, from and
//     mmsId fall back to the postback's), then the postback's own event;
//   - final with a pending send event: it is taken and published first;
//     while its recorder holds it (the sender is publishing it right now,
//     at most for its invocation), the postback waits;
//   - final with nothing pending: joined, and the tracking id linked when
//     it was not.
//
// With neither a linked id nor a usable CLIENT_REFERENCE, the tracking id
// is unknown: the sender may be about to link it. The tracking item keeps
// when its first postback arrived; for JoinWindow (10 minutes) after that
// the postback waits, then it goes out with "id": "" (counted, Unjoined).
//
// To wait, the handler first pauses within the invocation (50, 200 and
// 500 ms: most races last milliseconds), then releases what it holds and
// answers 503, and Skycore retries 5 minutes later (5 times at most).
//
// # Worst cases
//
//   - A postback whose send event is still held by its recorder, or whose
//     tracking id another invocation is emitting: 0.75 s of pauses, then
//     one Skycore retry, so its event is about 5 minutes late. The
//     recorder's hold ends with its invocation (the sender's timeout,
//     30 s), far before the retry.
//   - A tracking id linked by nobody, with no CLIENT_REFERENCE: 503 to the
//     first attempt and to the retry 5 minutes later, published on the
//     retry at about 10 minutes (15 if Skycore's retries come early), with
//     the id if the sender linked it meanwhile, else with "id": "". That
//     uses at most 3 of Skycore's 5 retries; a link written more than 10
//     minutes after the first postback is missed (the event has "id": "").
//   - A tracking id whose first postbacks waited: a later postback of it
//     is published at once after the window, and a lower one still
//     waiting becomes history when a higher one went out (no event).
//   - At least once: an invocation that dies after publishing but before
//     recording it (or whose record fails) leaves the event to be
//     published again by a retry after the 30 s hold; never out of order.
package postback
