package outbox

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/eventbridge"
	ebtypes "github.com/aws/aws-sdk-go-v2/service/eventbridge/types"
	"github.com/google/go-cmp/cmp"
)

// fakeBus records every PutEvents (its details, sorted); refuse[d] is how
// many times the entry with detail d is refused before it is taken.
type fakeBus struct {
	mu     sync.Mutex
	calls  []string
	refuse map[string]int
	taken  map[string]int // detail → times on the bus
	short  bool           // answers with one result too few
	down   error
}

func (f *fakeBus) PutEvents(_ context.Context, in *eventbridge.PutEventsInput, _ ...func(*eventbridge.Options)) (*eventbridge.PutEventsOutput, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.taken == nil {
		f.taken = map[string]int{}
	}
	var details []string
	out := &eventbridge.PutEventsOutput{}
	for _, e := range in.Entries {
		d := aws.ToString(e.Detail)
		details = append(details, d)
		if f.refuse[d] > 0 {
			f.refuse[d]--
			out.FailedEntryCount++
			out.Entries = append(out.Entries, ebtypes.PutEventsResultEntry{ErrorCode: aws.String("ThrottlingException"), ErrorMessage: aws.String("slow down")})
			continue
		}
		if f.down == nil {
			f.taken[d]++
		}
		out.Entries = append(out.Entries, ebtypes.PutEventsResultEntry{EventId: aws.String("ev-" + d)})
	}
	slices.Sort(details)
	f.calls = append(f.calls, strings.Join(details, ","))
	if f.down != nil {
		return nil, f.down
	}
	if f.short {
		out.Entries = out.Entries[1:]
	}
	return out, nil
}

type busResult struct {
	eventID, code string
	failed        int32
	err           error
}

// putAll has one joined caller per detail put its event at once.
func putAll(t *testing.T, o *Outbox, details ...string) map[string]busResult {
	t.Helper()
	var ctxs []context.Context
	var leaves []func()
	for range details {
		c, leave := o.Join(t.Context())
		ctxs, leaves = append(ctxs, c), append(leaves, leave)
	}
	var mu sync.Mutex
	out := map[string]busResult{}
	var wg sync.WaitGroup
	for i, d := range details {
		wg.Go(func() {
			defer leaves[i]()
			r, err := o.PutEvents(ctxs[i], &eventbridge.PutEventsInput{Entries: []ebtypes.PutEventsRequestEntry{{
				EventBusName: aws.String("apps"), Source: aws.String("mmsgate"), DetailType: aws.String("accepted"), Detail: aws.String(d)}}})
			res := busResult{err: err}
			if r != nil {
				res.failed = r.FailedEntryCount
				if len(r.Entries) == 1 {
					res.eventID, res.code = aws.ToString(r.Entries[0].EventId), aws.ToString(r.Entries[0].ErrorCode)
				}
			}
			mu.Lock()
			out[d] = res
			mu.Unlock()
		})
	}
	wg.Wait()
	return out
}

func details(n int, size int) []string {
	var out []string
	for i := range n {
		d := fmt.Sprintf("e%02d", i)
		out = append(out, d+strings.Repeat(" ", max(0, size-len(d))))
	}
	return out
}

// TestBusBatches: a group's events go on the bus in calls of at most ten
// entries and 256 KB, each caller gets its own entry's result.
func TestBusBatches(t *testing.T) {
	short := func(d []string) []string {
		var out []string
		for _, x := range d {
			out = append(out, strings.TrimSpace(x))
		}
		return out
	}
	for _, tt := range []struct {
		name      string
		n, size   int
		wantCalls int
	}{
		{"one", 1, 0, 1},
		{"ten in one call", 10, 0, 1},
		{"twelve in two", 12, 0, 2},
		{"six of 60 KB: four, then two (256 KB a call)", 6, 60 * 1024, 2},
	} {
		t.Run(tt.name, func(t *testing.T) {
			f := &fakeBus{}
			o := New(&fakeSQS{}).WithBus(f)
			o.Linger = time.Hour // only "everyone waits" may flush
			ds := details(tt.n, tt.size)
			got := putAll(t, o, ds...)
			for _, d := range ds {
				if r := got[d]; r.err != nil || r.failed != 0 || r.eventID != "ev-"+d {
					t.Errorf("%s: %+v; want its own event id", strings.TrimSpace(d), r)
				}
			}
			if len(f.calls) != tt.wantCalls {
				t.Errorf("%d PutEvents calls %v, want %d", len(f.calls), short(f.calls), tt.wantCalls)
			}
			for _, c := range f.calls {
				if n := strings.Count(c, ",") + 1; n > MaxEntries || len(c) > MaxEventBytes {
					t.Errorf("a call of %d entries, %d bytes", n, len(c))
				}
			}
		})
	}
}

// TestBusPartialFailure: EventBridge refuses some entries of a call
// (FailedEntryCount): only those are put again; one refused every time
// fails its own caller alone; no entry lands twice.
func TestBusPartialFailure(t *testing.T) {
	busBackoff = time.Millisecond
	f := &fakeBus{refuse: map[string]int{"e01": 1, "e03": 2, "e05": busAttempts}}
	o := New(&fakeSQS{}).WithBus(f)
	o.Linger = time.Hour
	ds := details(6, 0)
	got := putAll(t, o, ds...)
	for _, d := range ds {
		r := got[d]
		if d == "e05" {
			if r.err != nil || r.failed != 1 || r.code != "ThrottlingException" {
				t.Errorf("e05, refused %d times: %+v; want its refusal", busAttempts, r)
			}
			continue
		}
		if r.err != nil || r.failed != 0 || r.eventID != "ev-"+d {
			t.Errorf("%s: %+v; want its event id", d, r)
		}
	}
	want := []string{"e00,e01,e02,e03,e04,e05", "e01,e03,e05", "e03,e05"}
	if diff := cmp.Diff(want, f.calls); diff != "" {
		t.Errorf("calls (-want +got):\n%s", diff)
	}
	for _, d := range ds {
		if n := f.taken[d]; n != map[bool]int{true: 0, false: 1}[d == "e05"] {
			t.Errorf("%s on the bus %d times", d, n)
		}
	}
}

// TestBusDownOrAmbiguous: a failed call, or an answer without one result
// per entry, fails every caller of that call (each publishes again later).
func TestBusDownOrAmbiguous(t *testing.T) {
	for name, f := range map[string]*fakeBus{"down": {down: errors.New("down")}, "short answer": {short: true}} {
		t.Run(name, func(t *testing.T) {
			o := New(&fakeSQS{}).WithBus(f)
			o.Linger = time.Hour
			for d, r := range putAll(t, o, details(3, 0)...) {
				if r.err == nil {
					t.Errorf("%s: no error", d)
				}
			}
			if len(f.calls) != 1 {
				t.Errorf("calls %v, want one (the SDK retries a failed call, not the outbox)", f.calls)
			}
		})
	}
}

// TestBusNotJoined: outside a group, PutEvents is the bus's own.
func TestBusNotJoined(t *testing.T) {
	f := &fakeBus{}
	o := New(&fakeSQS{}).WithBus(f)
	in := &eventbridge.PutEventsInput{Entries: []ebtypes.PutEventsRequestEntry{{Detail: aws.String("a")}, {Detail: aws.String("b")}}}
	if _, err := o.PutEvents(context.Background(), in); err != nil || len(f.calls) != 1 || f.calls[0] != "a,b" {
		t.Errorf("err %v, calls %v", err, f.calls)
	}
}
