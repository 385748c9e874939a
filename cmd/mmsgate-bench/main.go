// Command mmsgate-bench measures the figures of BENCHMARKS.md and prints
// them as one table, each with its target and a pass/fail mark.
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"math"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"text/tabwriter"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"golang.org/x/sync/errgroup"

	"github.com/mmsgate/mmsgate/internal/localenv"
	"github.com/mmsgate/mmsgate/internal/memdb"
	"github.com/mmsgate/mmsgate/internal/rie"
	"github.com/mmsgate/mmsgate/internal/sim"
	"github.com/mmsgate/mmsgate/internal/soak"
	"github.com/mmsgate/mmsgate/internal/stack"
	"github.com/mmsgate/mmsgate/pkg/applog"
	"github.com/mmsgate/mmsgate/pkg/delivery"
	"github.com/mmsgate/mmsgate/pkg/outbox"
	"github.com/mmsgate/mmsgate/pkg/secret"
	"github.com/mmsgate/mmsgate/pkg/sender"
	"github.com/mmsgate/mmsgate/pkg/sendreq"
	"github.com/mmsgate/mmsgate/pkg/skycore"
	"github.com/mmsgate/mmsgate/pkg/store"
)

// row is one figure of the table.
type row struct {
	figure, target, measured string
	ok                       bool
}

func main() {
	load := flag.String("load", "", "internal: run as the load generator against this URL")
	n := flag.Int("n", 3000, "internal: requests for -load")
	c := flag.Int("c", 8, "internal: connections for -load")
	only := flag.String("only", "", "measure one group: go, sender, cold, sizes, postbacks, memory or lanes")
	flag.Parse()
	if *load != "" {
		loadGen(*load, *n, *c)
		return
	}
	ctx := context.Background()
	root, err := stack.Root()
	must(err)
	must(os.Chdir(root))
	start := time.Now()
	var rows []row
	var figures atomic.Int64 // len(rows), for the progress line
	add := func(r ...row) {
		rows = append(rows, r...)
		figures.Store(int64(len(rows)))
		for _, x := range r {
			fmt.Fprintf(os.Stderr, "  %-58s %s\n", x.figure, x.measured)
		}
	}
	fmt.Fprintln(os.Stderr, "measuring (about 7 minutes on 2 cores)…")
	var current atomic.Value // the group being measured, for the progress line
	current.Store("go")
	groups := []string{"go", "sender", "cold", "sizes", "postbacks", "memory", "lanes"}
	stopProgress := soak.ProgressLines(os.Stderr, 10*time.Second, func() string {
		g := current.Load().(string)
		return fmt.Sprintf("bench: %s measuring %s (group %d of %d), %d figures so far",
			time.Since(start).Round(time.Second), g, slices.Index(groups, g)+1, len(groups), figures.Load())
	})
	group := func(name string) bool {
		current.Store(name)
		return *only == "" || *only == name
	}
	if group("go") {
		add(goBench()...)
	}
	bins, err := stack.Build(ctx, root)
	must(err)
	if group("sender") {
		add(senderThroughput(ctx, false)...)
		add(senderThroughput(ctx, true)...)
	}
	if group("cold") {
		add(coldStarts(ctx, root, bins)...)
	}
	if group("sizes") {
		add(sizes(ctx, root)...)
	}
	if group("postbacks") {
		add(postbackLoad(ctx, bins)...)
	}
	if group("memory") {
		add(peakMemory(ctx, bins)...)
	}
	if group("lanes") {
		add(lanes(ctx, bins)...)
	}

	stopProgress()
	tw := tabwriter.NewWriter(os.Stdout, 2, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "FIGURE\tTARGET\tMEASURED\t")
	failed := 0
	for _, r := range rows {
		mark := "pass"
		if !r.ok {
			mark, failed = "FAIL", failed+1
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", r.figure, r.target, r.measured, mark)
	}
	tw.Flush()
	fmt.Printf("%d figures, %d failed, in %s on %d cores\n", len(rows), failed, time.Since(start).Round(time.Second), runtime.NumCPU())
	if failed > 0 {
		os.Exit(1)
	}
}

// goBench runs the package benchmarks and reads their metrics.
func goBench() []row {
	metrics := func(pkg, name, benchtime string) map[string]float64 {
		out, err := exec.Command("go", "test", pkg, "-run", "^$", "-bench", "^"+name+"$", "-benchmem", "-benchtime", benchtime, "-count", "1").CombinedOutput()
		must(err, string(out))
		m := map[string]float64{}
		for _, line := range strings.Split(string(out), "\n") {
			if !strings.HasPrefix(line, name) {
				continue
			}
			f := strings.Fields(line)
			for i := 2; i+1 < len(f); i += 2 {
				v, err := strconv.ParseFloat(f[i], 64)
				if err == nil {
					m[f[i+1]] = v
				}
			}
		}
		return m
	}
	cpu := metrics("./pkg/skycore", "BenchmarkValidateEncodeParse", "20000x")
	simm := metrics("./internal/sim", "BenchmarkAPI", "3s")
	pb := metrics("./pkg/postback", "BenchmarkHandle", "20000x")
	fast := metrics("./pkg/skycore", "BenchmarkParseResponse/fast", "20000x")
	slow := metrics("./pkg/skycore", "BenchmarkParseResponse/xml", "20000x")
	return []row{
		{"validate + encode + parse, per message", "≤ 20 µs, ≤ 40 allocs",
			fmt.Sprintf("%.1f µs, %.0f allocs", cpu["ns/op"]/1000, cpu["allocs/op"]), cpu["ns/op"] <= 20000 && cpu["allocs/op"] <= 40},
		// parseFast stays only while it pays: it keeps the row above.
		{"parse an accepted answer: fast path / encoding/xml alone", "fast ≤ ¼ of xml in time and allocs",
			fmt.Sprintf("%.1f µs, %.0f allocs / %.1f µs, %.0f allocs", fast["ns/op"]/1000, fast["allocs/op"], slow["ns/op"]/1000, slow["allocs/op"]),
			fast["ns/op"]*4 <= slow["ns/op"] && fast["allocs/op"]*4 <= slow["allocs/op"]},
		{"simulator on loopback, no latency", "≥ 2,000 req/s", fmt.Sprintf("%.0f req/s", simm["req/s"]), simm["req/s"] >= 2000},
		{"postback handler in process (AWS faked), 1 goroutine", "≥ 5,000/s, p99 ≤ 1 ms",
			fmt.Sprintf("%.0f/s, p50 %.0f µs, p99 %.0f µs", pb["postbacks/s"], pb["p50-µs"], pb["p99-µs"]), pb["postbacks/s"] >= 5000 && pb["p99-µs"] <= 1000},
	}
}

// senderThroughput runs the real handler in process against the simulator
// answering after 100 ms, with dynalite and moto's SQS, or (faked)
// with in-memory records, which leaves only the handler's own cost.
func senderThroughput(ctx context.Context, faked bool) []row {
	env, err := localenv.Start(ctx, localenv.Options{})
	must(err)
	defer env.Close()
	cfg := sim.Default()
	cfg.Latency = sim.Latency{Fixed: sim.Duration(100 * time.Millisecond)}
	s, err := sim.New(cfg)
	must(err)
	base, err := s.Start("127.0.0.1:0")
	must(err)
	defer s.Close()
	q := env.SQSClient()
	run := func(batch, conc int) time.Duration {
		box := outbox.New(q) // as functions/send-mms wires it: a batch's events in SendMessageBatch calls
		deps := sender.Deps{Keys: secret.New(env.SecretsManager(), localenv.SecretID, time.Hour), Skycore: skycore.New(base + sim.APIPath),
			Store: store.New(env.DynamoDBDirect(), localenv.Table, 0), Events: delivery.NewPublisher(box, env.EventsQueueURL), Queue: q,
			Outbox: box, Log: applog.New(bytes.NewBuffer(nil))}
		if faked {
			// The records on the in-memory DynamoDB: the same store code,
			// without dynalite's per-call cost.
			db := memdb.New()
			must(store.CreateTable(ctx, db, localenv.Table))
			deps.Store, deps.Events = store.New(db, localenv.Table, 0), memEvents{}
		}
		h := sender.NewHandler(sender.Config{Policy: sendreq.Policy{DefaultFrom: "60856"}, Concurrency: conc, CallTimeout: 5 * time.Second}, deps)
		mk := func(tag string) events.SQSEvent {
			ev := events.SQSEvent{}
			for i := range batch {
				ev.Records = append(ev.Records, events.SQSMessage{MessageId: fmt.Sprint(i),
					Body: fmt.Sprintf(`{"id":"b-%s-%d-%d-%d","to":"17743199144","mmsId":1000}`, tag, batch, conc, i)})
			}
			return ev
		}
		h.Handle(ctx, mk("warm")) // connections and the secret, as a warm instance has them
		ev := mk("run")
		t := time.Now()
		resp, err := h.Handle(ctx, ev)
		must(err)
		if len(resp.BatchItemFailures) > 0 {
			must(fmt.Errorf("%d failures in the benchmark batch", len(resp.BatchItemFailures)))
		}
		took := time.Since(t)
		env.DrainEvents() // not timed: the next run starts on an empty queue
		return took
	}
	latency := 100 * time.Millisecond
	var rows []row
	with := "dynalite"
	if faked {
		with = "AWS faked in memory"
	}
	for _, batch := range []int{10, 100} {
		times := map[int]time.Duration{}
		for _, conc := range []int{1, 10, 50} {
			times[conc] = run(batch, conc)
		}
		var parts []string
		for _, conc := range []int{1, 10, 50} {
			ideal := time.Duration(math.Ceil(float64(batch)/float64(conc))) * latency
			parts = append(parts, fmt.Sprintf("c=%d %s (%.0f %% of ideal)", conc, times[conc].Round(time.Millisecond), 100*float64(ideal)/float64(times[conc])))
		}
		speedup := float64(times[1]) / float64(times[10])
		ideal10 := time.Duration(math.Ceil(float64(batch)/10)) * latency
		eff := float64(ideal10) / float64(times[10])
		rows = append(rows, row{fmt.Sprintf("sender batch of %d, 100 ms Skycore, %s: c=1 / 10 / 50", batch, with), "c=10 ≥ 9× c=1 and ≥ 90 % of ideal",
			strings.Join(parts, ", ") + fmt.Sprintf("; c=10 is %.1f× c=1", speedup), speedup >= 9 && eff >= 0.9})
		if batch == 10 {
			over := (times[1] - 10*latency) / 10
			rows = append(rows, row{"sender overhead per message outside the Skycore call (c=1, " + with + ")", "≤ 1 ms",
				over.Round(10 * time.Microsecond).String(), over <= time.Millisecond})
		}
	}
	return rows
}

type memEvents struct{}

func (memEvents) Publish(context.Context, delivery.Event) error { return nil }

// coldStarts reads INIT durations from the emulator, 5 cold starts each.
func coldStarts(ctx context.Context, root string, bins stack.Binaries) []row {
	env, err := localenv.Start(ctx, localenv.Options{})
	must(err)
	defer env.Close()
	baseline := filepath.Join(root, ".run", "baseline", "bootstrap")
	cmd := exec.Command("go", "build", "-tags", "lambda.norpc", "-trimpath", "-o", baseline, "./cmd/lambda-baseline")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	out, err := cmd.CombinedOutput()
	must(err, string(out))
	envv := append(env.Environ(), "SKYCORE_API_URL=http://127.0.0.1:9/x", "SKYCORE_DEFAULT_FROM=60856")
	median := func(boot string, payload string) float64 {
		var inits []float64
		for range 5 {
			i, err := rie.Start(ctx, "cold", rie.Options{Emulator: bins.Emulator, Bootstrap: boot, Env: envv})
			must(err)
			i.Invoke(ctx, []byte(payload))
			for try := 0; try < 50 && len(i.InitDurations()) == 0; try++ {
				time.Sleep(10 * time.Millisecond)
			}
			if d := i.InitDurations(); len(d) > 0 {
				inits = append(inits, d[0])
			}
			i.Close()
		}
		slices.Sort(inits)
		if len(inits) == 0 {
			return math.NaN()
		}
		return inits[len(inits)/2]
	}
	b := median(baseline, `{}`)
	snd := median(bins.Sender, `{"Records":[]}`)
	pb := median(bins.Postback, `{"requestContext":{"http":{"method":"GET"}}}`)
	return []row{
		{"cold start (INIT), send-mms vs minimal aws-lambda-go", "≤ 5× the minimal function", fmt.Sprintf("%.1f ms vs %.1f ms (%.1f×)", snd, b, snd/b), snd/b <= 5},
		{"cold start (INIT), postback vs minimal aws-lambda-go", "≤ 5× the minimal function", fmt.Sprintf("%.1f ms vs %.1f ms (%.1f×)", pb, b, pb/b), pb/b <= 5},
	}
}

// sizes builds the bootstraps as `sam build` does (linux/arm64, stripped).
func sizes(ctx context.Context, root string) []row {
	dir, err := os.MkdirTemp("", "mmsgate-size")
	must(err)
	defer os.RemoveAll(dir)
	size := func(pkg string) float64 {
		out := filepath.Join(dir, filepath.Base(pkg))
		cmd := exec.CommandContext(ctx, "go", "build", "-tags", "lambda.norpc", "-trimpath", "-ldflags", "-s -w", "-o", out, pkg)
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOARCH=arm64")
		b, err := cmd.CombinedOutput()
		must(err, string(b))
		st, err := os.Stat(out)
		must(err)
		return float64(st.Size()) / (1 << 20)
	}
	snd, pb, base := size("./functions/send-mms"), size("./functions/postback"), size("./cmd/lambda-baseline")
	return []row{{"bootstrap size, linux/arm64 stripped: send-mms / postback / minimal", "≤ 15 MiB each",
		fmt.Sprintf("%.1f / %.1f / %.1f MiB", snd, pb, base), snd <= 15 && pb <= 15}}
}

// loadN is how many postbacks postbackLoad sends.
const loadN = 3000

// postbackLoad sends postbacks through the HTTP → API Gateway adapter to
// two postback emulators, from a second process.
func postbackLoad(ctx context.Context, bins stack.Binaries) []row {
	s, err := stack.Start(ctx, bins, stack.Options{Sim: sim.Default(), Postbacks: 2})
	must(err)
	defer s.Close()
	// Receipts of accepted requests, as in production: each tracking id is
	// linked and its accepted event out (an unknown one waits for its link).
	st := store.New(s.Env.DynamoDB(), localenv.Table, 0)
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(8)
	for i := 1; i <= loadN; i++ {
		g.Go(func() error {
			id, trk := fmt.Sprintf("load-%d", i), fmt.Sprintf("LOAD-%d", i)
			if _, _, err := st.Claim(gctx, id, store.Claim{Owner: "bench", Lease: time.Now().Add(time.Minute)}); err != nil {
				return err
			}
			if _, _, err := st.Accept(gctx, id, "bench", time.Now(), store.Outcome{TrackingID: trk}); err != nil {
				return err
			}
			if err := st.EventSent(gctx, id); err != nil {
				return err
			}
			return st.Link(gctx, trk, id, nil)
		})
	}
	must(g.Wait())
	self, err := os.Executable()
	must(err)
	// The application reads its events meanwhile, as it would: moto's
	// SendMessage slows with the depth of the queue (BENCHMARKS.md).
	read, stop := context.WithCancel(ctx)
	reading := make(chan struct{})
	go func() {
		defer close(reading)
		for read.Err() == nil {
			// As soon as there is something: moto's sends and reads both
			// slow with the depth of the queue (reading every 250 ms gave
			// 40/s against 110/s).
			if msgs, err := s.Env.Drain(read, localenv.EventQueue); err == nil && len(msgs) == 0 {
				time.Sleep(20 * time.Millisecond)
			}
		}
	}()
	out, err := exec.CommandContext(ctx, self, "-load", s.Adapter+"/skycore/postbacks/"+s.Token, "-n", strconv.Itoa(loadN), "-c", "8").Output()
	stop()
	<-reading
	must(err)
	var r struct {
		RPS, P50, P99 float64
		Errors        int
	}
	must(json.Unmarshal(out, &r))
	return []row{{"postbacks through the HTTP adapter, 2 emulators, load from a 2nd process", "≥ 200/s, p99 ≤ 100 ms, no errors",
		fmt.Sprintf("%.0f/s, p50 %.1f ms, p99 %.1f ms, %d errors", r.RPS, r.P50, r.P99, r.Errors), r.RPS >= 200 && r.P99 <= 100 && r.Errors == 0}}
}

// loadGen is the second process: n postbacks over c connections.
func loadGen(url string, n, c int) {
	body, err := os.ReadFile("pkg/postback/testdata/n102-delivered.xml")
	must(err)
	var next atomic.Int64
	var mu sync.Mutex
	var lat []time.Duration
	errs := 0
	client := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: c}}
	start := time.Now()
	var wg sync.WaitGroup
	for range c {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := next.Add(1)
				if i > int64(n) {
					return
				}
				b := bytes.Replace(body, []byte("DrXAFP-Ylpc-JZL"), []byte(fmt.Sprintf("LOAD-%d", i)), 1)
				t := time.Now()
				resp, err := client.Post(url, "text/xml", bytes.NewReader(b))
				d := time.Since(t)
				mu.Lock()
				if err != nil || resp.StatusCode != 200 {
					errs++
				} else {
					lat = append(lat, d)
				}
				mu.Unlock()
				if err == nil {
					resp.Body.Close()
				}
			}
		}()
	}
	wg.Wait()
	el := time.Since(start)
	slices.Sort(lat)
	ms := func(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
	res := map[string]any{"RPS": float64(len(lat)) / el.Seconds(), "Errors": errs}
	if len(lat) > 0 {
		res["P50"], res["P99"] = ms(lat[len(lat)/2]), ms(lat[len(lat)*99/100])
	}
	json.NewEncoder(os.Stdout).Encode(res)
}

// peakMemory runs a short soak and reads each function's VmHWM.
func peakMemory(ctx context.Context, bins stack.Binaries) []row {
	r, err := soak.Run(ctx, bins, soak.Options{N: 300, Seed: 3, Outage: 3 * time.Second, RefuseAccept: 2 * time.Second}) // memory, not reliability: short faults
	must(err)
	snd, pb := float64(r.PeakRSSKiB["send-mms"])/1024, float64(r.PeakRSSKiB["postback"])/1024
	measured := fmt.Sprintf("%.1f / %.1f MiB", snd, pb)
	if len(r.Violations) > 0 {
		measured += fmt.Sprintf(" (soak: %s)", strings.Join(r.Violations, "; "))
	}
	return []row{{"peak RSS under a 300-request soak: send-mms / postback", "≤ 64 MiB each (of 256 / 128 MB)",
		measured, snd > 0 && pb > 0 && snd <= 64 && pb <= 64 && len(r.Violations) == 0}}
}

func must(err error, detail ...string) {
	if err != nil {
		fmt.Fprintln(os.Stderr, "mmsgate-bench:", err, strings.Join(detail, " "))
		os.Exit(2)
	}
}
