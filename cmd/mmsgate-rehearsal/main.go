// Command mmsgate-rehearsal is `make deploy-rehearsal`: template.yaml
// deployed on moto's CloudFormation and run end to end as deployed
// (internal/rehearsal).
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"time"

	"github.com/mmsgate/mmsgate/internal/rehearsal"
	"github.com/mmsgate/mmsgate/internal/stack"
)

func main() {
	root, err := stack.Root() // the module's root, wherever it is run from
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	tpl := flag.String("template", filepath.Join(root, "template.yaml"), "the SAM template")
	env := flag.String("config-env", "default", "samconfig.toml environment")
	python := flag.String("python", "python3", "Python with the pinned aws-sam-translator")
	logs := flag.String("logs", "", "write the functions' log lines to this file")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	ctx, cancel := context.WithTimeout(ctx, 15*time.Minute)
	defer cancel()
	start := time.Now()
	say := func(s string) { fmt.Printf("rehearsal: [%s] %s\n", time.Since(start).Round(time.Second), s) }
	building := time.NewTicker(10 * time.Second)
	go func() {
		for range building.C {
			say("building the functions (make build-<LogicalId>)…")
		}
	}()
	arts, local, err := rehearsal.Build(ctx, root)
	building.Stop()
	if err != nil {
		fail(err)
	}
	say("built the functions as sam build does (.aws-sam/build)")
	var logw io.Writer
	if *logs != "" {
		f, err := os.Create(*logs)
		if err != nil {
			fail(err)
		}
		defer f.Close()
		logw = f
	}
	res, err := rehearsal.Run(ctx, rehearsal.Options{Logs: logw, Docs: filepath.Join(root, "docs", "deploy.md"), Template: *tpl, Samconfig: filepath.Join(root, "samconfig.toml"), ConfigEnv: *env,
		Python: *python, Emulator: filepath.Join(root, ".bin", "aws-lambda-rie"), Bootstraps: local, Artifacts: arts, Progress: say})
	if err != nil {
		fail(err)
	}
	fmt.Println(res.Summary())
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "rehearsal: FAILED:", err)
	os.Exit(1)
}
