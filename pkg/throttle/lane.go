package throttle

import (
	"context"
	"fmt"
	"net/url"
	"path"
	"strconv"
	"strings"

	"github.com/mmsgate/mmsgate/pkg/apperr"
	"github.com/mmsgate/mmsgate/pkg/sendreq"
	"github.com/mmsgate/mmsgate/pkg/skycore"
)

// Lanes tells a record's lane from the queue it came from: an SQS event
// source mapping's batch comes from one queue, named in each record's
// eventSourceARN (arn:aws:sqs:region:account:name); BULK_SEND_QUEUE_URL's
// last path segment is the same name.
type Lanes struct {
	bulk string // the bulk queue's name; "": every record is transactional
}

// NewLanes takes BULK_SEND_QUEUE_URL.
func NewLanes(bulkQueueURL string) Lanes {
	if bulkQueueURL == "" {
		return Lanes{}
	}
	if u, err := url.Parse(bulkQueueURL); err == nil && u.Path != "" {
		return Lanes{bulk: path.Base(u.Path)}
	}
	return Lanes{bulk: path.Base(bulkQueueURL)}
}

// Of is the lane of a record with this eventSourceARN. Anything that is
// not the bulk queue is transactional: a lane is never demoted by mistake.
func (x Lanes) Of(eventSourceARN string) Lane {
	if x.bulk != "" && eventSourceARN[strings.LastIndexByte(eventSourceARN, ':')+1:] == x.bulk {
		return Bulk
	}
	return Transactional
}

type laneKey struct{}

// WithLane puts the lane of the requests handled under ctx on it.
func WithLane(ctx context.Context, l Lane) context.Context {
	return context.WithValue(ctx, laneKey{}, l)
}

// LaneOf is WithLane's lane, Transactional when none was put.
func LaneOf(ctx context.Context) Lane {
	l, _ := ctx.Value(laneKey{}).(Lane)
	return l
}

// EnvVars are the variables of the send-mms function this package reads
// (docs/configuration.md).
var EnvVars = []string{"SKYCORE_RATE_LIMIT", "BULK_SEND_QUEUE_URL"}

// RateFromEnv reads SKYCORE_RATE_LIMIT: the account's Skycore calls per
// second, 0 (the default) is off.
func RateFromEnv(getenv func(string) string) (float64, error) {
	v := getenv("SKYCORE_RATE_LIMIT")
	if v == "" {
		return 0, nil
	}
	r, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
	if err != nil || r < 0 || r > 1e6 {
		return 0, fmt.Errorf("SKYCORE_RATE_LIMIT=%q: want calls per second, 0 (off) or more", v)
	}
	return r, nil
}

// api is the Skycore client the gate guards.
type api interface {
	SendSavedMMS(ctx context.Context, apiKey string, r *sendreq.Request) (*skycore.Response, error)
}

// Gate is a Skycore client that takes a slot (Wait, in ctx's lane) before
// every call and reports E113 (Penalize). A call it holds back is never
// made: its error is Retry-class and not "maybe sent".
type Gate struct {
	next api
	l    *Limiter
}

// NewGate guards next with l.
func NewGate(next api, l *Limiter) *Gate { return &Gate{next: next, l: l} }

// SendSavedMMS waits for a slot, then calls.
func (g *Gate) SendSavedMMS(ctx context.Context, apiKey string, r *sendreq.Request) (*skycore.Response, error) {
	if err := g.l.Wait(ctx, LaneOf(ctx)); err != nil {
		return nil, err
	}
	resp, err := g.next.SendSavedMMS(ctx, apiKey, r)
	if apperr.CodeOf(err) == "E113" {
		g.l.Penalize(ctx) // a failed cut only leaves the rate as it was
	}
	return resp, err
}
