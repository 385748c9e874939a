// Command skycore-sim runs the Skycore simulator: the v1 XML API's
// sendSavedMMS at /API/wxml/1.3/index.php, delivery postbacks to
// -postback-url, and inspection under /_sim/.
package main

import (
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/mmsgate/mmsgate/internal/sim"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:8099", "listen address")
	postbackURL := flag.String("postback-url", "", "where delivery postbacks go (empty: none)")
	config := flag.String("config", "", "JSON config file (default: one account, key sim-api-key, FROM 60856, MMSID 1000-1009)")
	seed := flag.Int64("seed", 0, "seed for scenario mixes and fault rates (0: config's)")
	retry := flag.Duration("postback-retry-interval", 0, "wait before a postback retry (default 5m)")
	delay := flag.Duration("postback-delay", 0, "pause before each postback (default 50ms)")
	flag.Parse()
	log := slog.New(slog.NewJSONHandler(os.Stderr, nil))

	cfg := sim.Default()
	if *config != "" {
		var err error
		if cfg, err = sim.Load(*config); err != nil {
			log.Error("config", "err", err)
			os.Exit(2)
		}
	}
	if *postbackURL != "" {
		cfg.PostbackURL = *postbackURL
	}
	if *seed != 0 {
		cfg.Seed = *seed
	}
	if *retry > 0 {
		cfg.RetryInterval = sim.Duration(*retry)
	}
	if *delay > 0 {
		cfg.PostbackDelay = sim.Duration(*delay)
	}
	s, err := sim.New(cfg)
	if err != nil {
		log.Error("config", "err", err)
		os.Exit(2)
	}
	base, err := s.Start(*addr)
	if err != nil {
		log.Error("listen", "err", err)
		os.Exit(1)
	}
	fmt.Printf("skycore-sim: API at %s%s, inspection at %s/_sim/requests\n", base, sim.APIPath, base)
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, os.Interrupt, syscall.SIGTERM)
	<-sig
	s.Close()
	time.Sleep(10 * time.Millisecond)
}
