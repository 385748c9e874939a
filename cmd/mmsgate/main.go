// Command mmsgate is the operator's tool for a running mmsgate: what
// happened to a request (status), the suppression list (suppress) and
// moving dead-letter messages back to the send queue (redrive). Run
// `mmsgate help`; the logic is in internal/ops.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"github.com/mmsgate/mmsgate/internal/ops"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	cli := &ops.CLI{Stdout: os.Stdout, Stderr: os.Stderr, Getenv: os.Getenv, Connect: ops.ConnectAWS}
	code := cli.Run(ctx, os.Args[1:])
	stop()
	os.Exit(code)
}
