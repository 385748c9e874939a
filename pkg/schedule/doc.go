// Package schedule is when a request may be sent: the schedule-sweep
// function that hands requests with a future sendAt back to their send
// queue when due, and the expiresAt bounds on a request's calls and
// back-off (docs/request.md, "sendAt", "expiresAt").
//
// # Why the schedule lives in DynamoDB, swept every minute
//
// sendAt may be 35 days ahead. SQS keeps a message at most 14 days (4 by
// default) and hides it at most 12 hours at a time, so a schedule resting
// on the send queue would be lost to retention, and re-hiding it every 12
// hours costs requests while it waits. So the sender records a request
// whose sendAt is in the future in its own msg#<id> record (state
// SCHEDULED, the body included, pkg/store), publishes its `scheduled`
// event, and only then deletes the SQS message. The record is the one
// source of truth: the id's claim, its cancel and its hand-off are each a
// conditional write on that one item, so no two of them can both win
// without a transaction, and a crash between any two writes leaves a state
// the next step (or redelivery) completes.
//
// A record whose scheduled event is out carries dueShard and dueMs, the
// keys of a sparse, keys-only GSI (store.DueIndex). Every minute an
// EventBridge rule runs this sweeper: it queries each shard for entries due
// within Lookahead, claims each entry (ClaimDue moves dueMs forward by
// ClaimLease, so one sweeper at a time hands it off, and one that dies
// leaves it to the sweep after the lease), puts the body on its lane's
// send queue with DelaySeconds up to its sendAt, then ends the wait
// (Unschedule: RETRY with attempts 0, the index entry removed). The body's
// delivery then claims the id as any request; a duplicate body (a sweeper
// died between its SendMessage and Unschedule) is one more delivery of an
// id, which the claim already makes harmless. The look-ahead and the
// message delay make the call start within seconds of sendAt whatever the
// rule's jitter; the sender still checks sendAt, so no call starts before
// it.
//
// EventBridge Scheduler (one one-time schedule per request) was the other
// candidate: nothing to pay while a request waits, and $1 per million
// schedules. It was not chosen because a second copy of the truth (the
// schedule) must then be created, deleted on cancel and reconciled with
// the record after every crash between the two writes; its target input is
// too small for a 256 KiB body, so it would carry an id and the body would
// stay in DynamoDB anyway; and the local stand-in (moto) stores schedules
// but never fires them, so `make run`, `make dev` and the soak would run a
// different mechanism than AWS does. The sweeper is the same code
// everywhere: locally it runs as a Lambda under the runtime emulator,
// invoked on a short period.
//
// # What it costs
//
// Fixed, whatever the number of scheduled requests: 1,440 sweeps a day
// (Lambda requests, 128 MB, well under a second each when nothing is due)
// and 1,440 × DueShards index queries (0.5 read unit each on an empty
// shard). Per scheduled request: its record written once with the body
// (1 write unit per KB), its index entry written when its event is out,
// moved by the claim and removed by the hand-off (index writes of a
// keys-only entry, 1 unit each), the record updated twice (claim,
// Unschedule: 1 unit per KB each), one SendMessage, and the `scheduled`
// event. While it waits: nothing but storage (about 1–3 KB), no request
// per waiting day. BENCHMARKS.md has the table.
package schedule
