// Command mmsgate-soak runs the reliability soak (internal/soak) and prints its
// summary, whose last line is
//
//	soak: ids N, lost 0, sent twice 0, terminal events per id 1, forged acceptances 0, expired E, in-doubt reconciled R, resent after in-doubt window W, sent after opt-out 0, metadata mismatches 0, early sends 0, sent after expiresAt 0, cancel violations 0, E113 S % at L/s
//
// after a line with the unjoined postback events and order violations; it
// exits 1 when an invariant breaks. -indoubt-window 0 runs with
// SEND_INDOUBT_WINDOW off, to measure what the window saves.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/mmsgate/mmsgate/internal/soak"
	"github.com/mmsgate/mmsgate/internal/stack"
)

func main() {
	n := flag.Int("n", 10000, "send requests")
	seed := flag.Uint64("seed", 1, "seed")
	kills := flag.Int("kills", 4, "sender crashes")
	timeout := flag.Duration("timeout", 40*time.Minute, "give up after")
	indoubt := flag.Duration("indoubt-window", -1, "SEND_INDOUBT_WINDOW (default 25s for -n ≤ 1000, else 90s; 0: off, an in-doubt request is sent again at once)")
	outage := flag.Duration("outage", 0, "how long Skycore is down (default 80s for -n ≤ 1000, else 3m)")
	refuse := flag.Duration("refuse-accept", 0, "how long DynamoDB refuses acceptance writes (default 8s)")
	rateLimit := flag.Float64("rate-limit", soak.DefaultRateLimit, "the simulator's account-wide limit, calls per second (E113 beyond; 0: off)")
	retryWindow := flag.Duration("retry-window", 0, "SEND_RETRY_WINDOW (default: outage + 100s + 30ms per request, 100ms past 1,000 requests)")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	root, err := stack.Root()
	if err == nil {
		err = os.Chdir(root)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	bins, err := stack.Build(ctx, root)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	os.MkdirAll(".run", 0o755)
	// One log a run: a later run must not overwrite the lines that explain
	// an earlier one's findings.
	logPath := fmt.Sprintf(".run/soak-functions-seed%d-%s.log", *seed, time.Now().UTC().Format("20060102T150405"))
	logs, _ := os.Create(logPath)
	defer logs.Close()
	if *outage == 0 && *n > 1000 {
		*outage = 3 * time.Minute
	}
	if *indoubt < 0 {
		// The window must outlast the reconciling postback's way back,
		// which at 10,000 requests queues behind thousands of others at the
		// one postback emulator (a run at 25 s on a loaded machine resent
		// one in-doubt request whose N101 came after it).
		*indoubt = 25 * time.Second
		if *n > 1000 {
			*indoubt = 90 * time.Second
		}
	}
	if *rateLimit == 0 {
		*rateLimit = -1 // soak.Options: negative is off
	}
	r, err := soak.Run(ctx, bins, soak.Options{N: *n, Seed: *seed, Kills: *kills, Timeout: *timeout, Progress: os.Stderr, Logs: logs,
		Outage: *outage, RefuseAccept: *refuse, RetryWindow: *retryWindow, InDoubtWindow: *indoubt, InDoubtOff: *indoubt == 0,
		RateLimit: *rateLimit})
	if r != nil {
		r.Print(os.Stdout)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "soak:", err)
		os.Exit(1)
	}
	if r.Failed() {
		fmt.Printf("the functions' log lines of those ids (all of them in %s):\n%s\n", logPath, soak.LinesOf(logPath, r.Violations, 60))
		os.Exit(1)
	}
}
