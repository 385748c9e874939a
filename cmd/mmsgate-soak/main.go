// Command mmsgate-soak runs the reliability soak (internal/soak) and prints its
// summary; it exits 1 when an invariant breaks.
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
	timeout := flag.Duration("timeout", 15*time.Minute, "give up after")
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
	logs, _ := os.Create(".run/soak-functions.log")
	defer logs.Close()
	r, err := soak.Run(ctx, bins, soak.Options{N: *n, Seed: *seed, Kills: *kills, Timeout: *timeout, Progress: os.Stderr, Logs: logs})
	if r != nil {
		r.Print(os.Stdout)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "soak:", err)
		os.Exit(1)
	}
	if len(r.Violations) > 0 {
		os.Exit(1)
	}
}
