package rehearsal

import (
	"context"
	"encoding/json"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/lambda"

	"github.com/mmsgate/mmsgate/internal/localenv"
	"github.com/mmsgate/mmsgate/pkg/delivery"
)

// The stack's EventBusName in the rehearsal: the bus localenv creates for
// an application's rule (docs/events.md "On an EventBridge bus").
const rehearsalBus = localenv.EventBus

// busWait bounds the wait for the bus's copies: a function puts an event on
// the bus after the queue has it, so the last ones may trail the queue.
const busWait = 30 * time.Second

// eventSet is a set of delivery events, each by its JSON (a duplicate
// publication is the same event), with a readable name for messages.
type eventSet map[string]string

func (s eventSet) add(e delivery.Event) {
	b, _ := json.Marshal(e)
	s[string(b)] = e.ID + ":" + e.Event
}

// queueEvents are the delivery-events queue's events of ids.
func queueEvents(all []delivery.Event, ids map[string]bool) eventSet {
	s := eventSet{}
	for _, e := range all {
		if ids[e.ID] {
			s.add(e)
		}
	}
	return s
}

// addBusMessages adds to s the events of ids among the messages the rule
// put on its target queue. Every message must be an mmsgate event with its
// kind as detail-type (docs/events.md), whatever its id.
func addBusMessages(s eventSet, bodies []string, ids map[string]bool) error {
	for _, b := range bodies {
		m, err := localenv.ParseBusMessage(b)
		if err != nil {
			return err
		}
		if m.Source != delivery.BusSource || m.DetailType != m.Event.Event || m.Event.Event == "" {
			return fmt.Errorf("bus event of %s: source %q, detail-type %q for a %q event; want source %q and the kind", m.Event.ID, m.Source, m.DetailType, m.Event.Event, delivery.BusSource)
		}
		if ids[m.Event.ID] {
			s.add(m.Event)
		}
	}
	return nil
}

// diff names the events of want not in got (missing) and of got not in
// want (extra), sorted.
func diff(want, got eventSet) (missing, extra []string) {
	for k, n := range want {
		if _, ok := got[k]; !ok {
			missing = append(missing, n)
		}
	}
	for k, n := range got {
		if _, ok := want[k]; !ok {
			extra = append(extra, n)
		}
	}
	sort.Strings(missing)
	sort.Strings(extra)
	return missing, extra
}

// checkBus reads the bus rule's target queue until it holds exactly the
// events the delivery-events queue (queued) has for ids, with the same
// content, and returns how many. The messages it reads are deleted, so
// that the next run reads its own.
func (d *Deployment) checkBus(ctx context.Context, env *localenv.Env, queued func() []delivery.Event, idList ...string) (int, error) {
	ids := map[string]bool{}
	for _, id := range idList {
		ids[id] = true
	}
	got := eventSet{}
	deadline := time.Now().Add(busWait)
	for {
		msgs, err := env.ReceiveAll(ctx, d.BusQueueURL, time.Minute)
		if err != nil {
			return 0, fmt.Errorf("the bus rule's queue: %w", err)
		}
		bodies := make([]string, len(msgs))
		for i, m := range msgs {
			bodies[i] = aws.ToString(m.Body)
		}
		if err := addBusMessages(got, bodies, ids); err != nil {
			return 0, err
		}
		if err := env.Delete(ctx, d.BusQueueURL, msgs); err != nil {
			return 0, err
		}
		want := queueEvents(queued(), ids)
		missing, extra := diff(want, got)
		if len(extra) > 0 {
			return 0, fmt.Errorf("on the bus and not on the delivery-events queue (or not the same): %s", strings.Join(extra, ", "))
		}
		if len(missing) == 0 {
			return len(got), nil
		}
		if time.Now().After(deadline) {
			return 0, fmt.Errorf("not on the bus %s after %s (its rule's queue has %d of %d): %s", d.Params["EventBusName"], busWait, len(got), len(want), strings.Join(missing, ", "))
		}
		select {
		case <-ctx.Done():
			return 0, ctx.Err()
		case <-time.After(500 * time.Millisecond):
		}
	}
}

// busFunctions are the created functions whose environment names the bus
// (delivery.BusEnv): each must put events on it.
func (d *Deployment) busFunctions(ctx context.Context, bus string) ([]string, error) {
	var out []string
	for _, l := range sortedNames(d.Full) {
		if _, created := d.ids[l]; !created || d.Full.Resources[l].Type != "AWS::Lambda::Function" {
			continue
		}
		c, err := d.c.lam.GetFunctionConfiguration(ctx, &lambda.GetFunctionConfigurationInput{FunctionName: aws.String(d.ids[l])})
		if err != nil {
			return nil, fmt.Errorf("%s: %w", l, err)
		}
		if c.Environment != nil && c.Environment.Variables[delivery.BusEnv] == bus {
			out = append(out, l)
		}
	}
	return out, nil
}

// busCallers checks that each function of fns put events on the bus (its
// ARN) and returns how many did; the calls' role check is checkRoles'.
func busCallers(calls map[string][]Call, fns []string, busARN string) (int, error) {
	if len(fns) == 0 {
		return 0, fmt.Errorf("no function has %s set to %s", delivery.BusEnv, busARN)
	}
	var silent []string
	for _, fn := range fns {
		put := false
		for _, c := range calls[fn] {
			put = put || (c.Action == "events:PutEvents" && c.Resource == busARN)
		}
		if !put {
			silent = append(silent, fn)
		}
	}
	if len(silent) > 0 {
		return 0, fmt.Errorf("%s: %s set and no event put on %s", strings.Join(silent, ", "), delivery.BusEnv, busARN)
	}
	return len(fns), nil
}

func busARN(bus string) string {
	return "arn:aws:events:" + Region + ":" + Account + ":event-bus/" + bus
}
