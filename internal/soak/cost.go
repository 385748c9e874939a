package soak

import (
	"context"
	"fmt"
	"io"
	"math"
	"sort"
	"strings"
	"text/tabwriter"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/mmsgate/mmsgate/internal/faultproxy"
	"github.com/mmsgate/mmsgate/internal/memdb"
	"github.com/mmsgate/mmsgate/internal/stack"
)

// Prices are on-demand list prices in US dollars, us-east-1 (BENCHMARKS.md,
// "Cost per million delivered messages", cites each).
type Prices struct {
	WRU, RRU       float64 // DynamoDB on-demand, per million write / read request units
	SQS            float64 // SQS standard, per million requests (64 KiB chunks)
	LambdaRequests float64 // per million invocations
	GBSecond       float64 // arm64, per GB-second
	HTTPAPI        float64 // API Gateway HTTP API, per million requests
	Secrets        float64 // Secrets Manager, per 10,000 API calls
}

// DefaultPrices were read on 2026-11-26.
var DefaultPrices = Prices{WRU: 0.625, RRU: 0.125, SQS: 0.40, LambdaRequests: 0.20, GBSecond: 0.0000133334, HTTPAPI: 1.00, Secrets: 0.05}

// Cost is one row of the cost table: what one service bills one caller
// for one operation over the run.
type Cost struct {
	Service, Op, By string
	Requests        int64   // requests that reached the service
	Messages        int64   // SQS: messages sent, received or deleted (a batch entry is one)
	Units           float64 // what is billed: requests (SQS: 64 KiB chunks), request units, GB-seconds
	Unit            string  // "requests", "WRU", "RRU", "GB-s"
	Dollars         float64 // Units at DefaultPrices
	Note            string
}

// Usage is the run's AWS usage: from the first enqueue to the end of the
// pump (the soak's own reads of the table and the events afterwards are
// not in it).
type Usage struct {
	Costs []Cost
	// Not billed per message: the throttled DynamoDB calls, the local
	// poller's empty receives (Lambda long-polls instead: a fixed cost per
	// queue, not per message), the harness's own calls.
	Throttled, EmptyReceives int64
	// Items of the table, as DynamoDB sizes them (bytes).
	MaxMsgItem, MaxTrkItem, ItemsOver1KB, Items int
}

// Dollars is the run's total.
func (u *Usage) Dollars() float64 {
	t := 0.0
	for _, c := range u.Costs {
		t += c.Dollars
	}
	return t
}

// snapshot is every counter at one moment.
type snapshot struct {
	dynamo   map[faultproxy.Call]int64
	capacity map[faultproxy.Call]float64
	sqs      map[faultproxy.SQSCall]faultproxy.SQSUsage
	secrets  map[string]int64
	stack    stack.Usage
}

func takeSnapshot(s *stack.Stack) snapshot {
	return snapshot{dynamo: s.Env.Proxy.Calls(), capacity: s.Env.Proxy.Capacity(), sqs: s.Env.SQSFaults.SQSCalls(),
		secrets: secretReads(s.Env.SecretsFaults), stack: s.Usage()}
}

// secretReads counts the GetSecretValue calls through p (the fault proxy
// in front of Secrets Manager) by caller.
func secretReads(p *faultproxy.Proxy) map[string]int64 {
	out := map[string]int64{}
	for c, n := range p.Calls() {
		if c.Op == "GetSecretValue" {
			out[c.Caller] += n
		}
	}
	return out
}

// caller names an application id; "" is the harness.
func caller(id string) string {
	if id == "" {
		return "harness"
	}
	return id
}

// usage turns two snapshots into the cost table at prices p. Calls of the
// harness (no application id) are left out.
func usage(before, after snapshot, p Prices) *Usage {
	u := &Usage{}
	type key struct{ op, by string }
	dyn := map[key]*Cost{}
	notes := map[key][2]int64{} // failed conditions, throttled
	for c, n := range after.dynamo {
		n -= before.dynamo[c]
		if n == 0 || c.Caller == "" {
			continue
		}
		k := key{c.Op, caller(c.Caller)}
		row := dyn[k]
		if row == nil {
			row = &Cost{Service: "DynamoDB", Op: c.Op, By: k.by, Unit: "WRU"}
			if c.Op == "GetItem" || c.Op == "Query" || c.Op == "Scan" {
				row.Unit = "RRU"
			}
			dyn[k] = row
		}
		nt := notes[k]
		switch c.Outcome {
		case faultproxy.ThrottledOutcome:
			u.Throttled += n
			nt[1] += n
		case faultproxy.ConditionalFailed:
			// Billed, though dynalite reports no capacity for it: one unit
			// for an item under 1 KB.
			row.Requests += n
			row.Units += float64(n)
			nt[0] += n
		case faultproxy.OK:
			row.Requests += n
			row.Units += after.capacity[c] - before.capacity[c]
		}
		notes[k] = nt
	}
	for k, row := range dyn {
		price := p.WRU
		if row.Unit == "RRU" {
			price = p.RRU
		}
		row.Dollars = row.Units * price / 1e6
		var ns []string
		if n := notes[k][0]; n > 0 {
			ns = append(ns, fmt.Sprintf("%d failed conditions", n))
		}
		if n := notes[k][1]; n > 0 {
			ns = append(ns, fmt.Sprintf("+%d throttled, not billed", n))
		}
		row.Note = strings.Join(ns, ", ")
		u.Costs = append(u.Costs, *row)
	}
	for c, a := range after.sqs {
		b := before.sqs[c]
		n, billed := a.Requests-b.Requests, a.Billed-b.Billed
		if n == 0 || c.Caller == "" {
			continue
		}
		u.Costs = append(u.Costs, Cost{Service: "SQS", Op: c.Op + " " + c.Queue, By: caller(c.Caller), Requests: n, Messages: a.Messages - b.Messages,
			Units: float64(billed), Unit: "requests", Dollars: float64(billed) * p.SQS / 1e6,
			Note: fmt.Sprintf("%d messages", a.Messages-b.Messages)})
	}
	for queue, ea := range after.stack.ESM {
		eb := before.stack.ESM[queue]
		esm := func(op string, n, msgs int64) {
			if n > 0 {
				u.Costs = append(u.Costs, Cost{Service: "SQS", Op: op + " " + queue, By: "Lambda ESM", Requests: n, Messages: msgs,
					Units: float64(n), Unit: "requests", Dollars: float64(n) * p.SQS / 1e6, Note: fmt.Sprintf("%d messages", msgs)})
			}
		}
		esm("ReceiveMessage", ea.Receives-eb.Receives, ea.Received-eb.Received)
		esm("DeleteMessageBatch", ea.DeleteBatches-eb.DeleteBatches, ea.Deleted-eb.Deleted)
		u.EmptyReceives += ea.EmptyReceives - eb.EmptyReceives
	}
	for id, n := range after.secrets {
		if n -= before.secrets[id]; n > 0 && id != "" {
			u.Costs = append(u.Costs, Cost{Service: "Secrets Manager", Op: "GetSecretValue", By: id, Requests: n,
				Units: float64(n), Unit: "requests", Dollars: float64(n) * p.Secrets / 1e4, Note: "one per cold start: cached"})
		}
	}
	for name, fa := range after.stack.Functions {
		fb := before.stack.Functions[name]
		n := fa.Invocations - fb.Invocations
		if n == 0 {
			continue
		}
		gbs := fa.GBSeconds() - fb.GBSeconds()
		inits := fa.Inits - fb.Inits
		u.Costs = append(u.Costs,
			Cost{Service: "Lambda", Op: "invocations", By: name, Requests: n, Units: float64(n), Unit: "requests", Dollars: float64(n) * p.LambdaRequests / 1e6},
			Cost{Service: "Lambda", Op: "duration", By: name, Requests: n, Units: gbs, Unit: "GB-s", Dollars: gbs * p.GBSecond,
				Note: fmt.Sprintf("%d MB, %.1f ms billed per invocation, %d cold starts", fa.MemoryMB,
					float64((fa.Billed-fb.Billed).Milliseconds())/float64(max(fa.Reports-fb.Reports, 1)), inits)})
	}
	if n := after.stack.APIRequests - before.stack.APIRequests; n > 0 {
		u.Costs = append(u.Costs, Cost{Service: "API Gateway", Op: "HTTP API requests", By: "Skycore postbacks", Requests: n,
			Units: float64(n), Unit: "requests", Dollars: float64(n) * p.HTTPAPI / 1e6})
	}
	order := map[string]int{"DynamoDB": 0, "SQS": 1, "Lambda": 2, "API Gateway": 3, "Secrets Manager": 4}
	sort.SliceStable(u.Costs, func(i, j int) bool {
		a, b := u.Costs[i], u.Costs[j]
		if a.Service != b.Service {
			return order[a.Service] < order[b.Service]
		}
		if a.By != b.By {
			return a.By < b.By
		}
		return a.Op < b.Op
	})
	return u
}

// measureItems sizes every item of the table as DynamoDB does.
func (u *Usage) measureItems(ctx context.Context, db *dynamodb.Client, table string) error {
	p := dynamodb.NewScanPaginator(db, &dynamodb.ScanInput{TableName: aws.String(table)})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return err
		}
		for _, it := range page.Items {
			n := memdb.ItemSize(it)
			u.Items++
			if n > 1024 {
				u.ItemsOver1KB++
			}
			pk, _ := it["pk"].(*types.AttributeValueMemberS)
			switch {
			case pk == nil:
			case strings.HasPrefix(pk.Value, "msg#"):
				u.MaxMsgItem = max(u.MaxMsgItem, n)
			case strings.HasPrefix(pk.Value, "trk#"):
				u.MaxTrkItem = max(u.MaxTrkItem, n)
			}
		}
	}
	return nil
}

// printCosts writes the cost table: each row per accepted id, per request
// and in dollars per million accepted ids.
func (u *Usage) printCosts(w io.Writer, accepted, requests int) {
	if u == nil || len(u.Costs) == 0 {
		return
	}
	a, q := float64(max(accepted, 1)), float64(max(requests, 1))
	fmt.Fprintf(w, "AWS usage (%d accepted ids, %d requests; us-east-1 on-demand prices):\n", accepted, requests)
	tw := tabwriter.NewWriter(w, 2, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "  service\toperation\tby\trequests\tbilled\tper accepted id\tper request\t$ per million accepted\tnote")
	for _, c := range u.Costs {
		fmt.Fprintf(tw, "  %s\t%s\t%s\t%d\t%s %s\t%s\t%s\t%.2f\t%s\n", c.Service, c.Op, c.By, c.Requests, num(c.Units), c.Unit,
			num(c.Units/a), num(c.Units/q), c.Dollars/a*1e6, c.Note)
	}
	fmt.Fprintf(tw, "  total\t\t\t\t\t\t\t%.2f\t\n", u.Dollars()/a*1e6)
	tw.Flush()
	fmt.Fprintf(w, "  not billed per message: %d DynamoDB calls throttled; %d empty receives of the local poller (Lambda long-polls)\n",
		u.Throttled, u.EmptyReceives)
	if u.Items > 0 {
		fmt.Fprintf(w, "  table items: %d, largest msg# %d B, largest trk# %d B, over 1 KB: %d\n", u.Items, u.MaxMsgItem, u.MaxTrkItem, u.ItemsOver1KB)
	}
}

// num prints a count compactly.
func num(f float64) string {
	switch {
	case f == math.Trunc(f) && f < 1e9:
		return fmt.Sprintf("%.0f", f)
	case f >= 100:
		return fmt.Sprintf("%.1f", f)
	case f >= 0.01:
		return fmt.Sprintf("%.3f", f)
	}
	return fmt.Sprintf("%.2g", f)
}
