// Command skycore-sim runs the Skycore simulator: the v1 XML API's
// sendSavedMMS at /API/wxml/1.3/index.php, delivery postbacks to
// -postback-url, and inspection under /_sim/ (GET /_sim/requests lists every
// call, with "accepted" when Skycore queued the message). POST /_sim/mo
// {"from": "17743199144", "to": "60856", "text": "STOP"} posts an inbound
// message (SMS MO; "subject" and "files" for MMS MO) to the postback URL;
// after a STOP, sends to that number from that code answer E114 until a
// START (GET /_sim/optouts lists them).
//
// Fault flags (all off by default; a -config file can set the same and more,
// see internal/sim):
//
//	-accept-timeout 0.05     accept 5 % of sends, then hold the answer until the caller gives up
//	-accept-reset 0.02       accept 2 % of sends, then drop the connection
//	-omit-client-reference 0.1   leave CLIENT_REFERENCE out of 10 % of postbacks
//	-early-postback 0.1      deliver the first postback of 10 % of sends before their answer
//	-no-receipt-carriers 0001470,0001570   these SPIDs send N101 and no receipt
//	-silent-carriers 0001650 this SPID sends no postback at all
//	-outage http503:30s:2m   from 30 s after start, for 2 min, every call gets an HTML 503
//	                         (kinds E503, http503, reset, refused; repeatable)
//	-rate-limit 100          the account's throughput: at most 100 calls in any second, all
//	                         callers together; beyond it E113 (GET /_sim/throughput counts them)
//	-min-interval 2s         E106: a key's call sooner than 2s after its previous one
package main

import (
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/mmsgate/mmsgate/internal/sim"
)

// outages collects -outage kind:start:length.
type outages []sim.Outage

func (o *outages) String() string { return fmt.Sprint(*o) }

func (o *outages) Set(v string) error {
	parts := strings.Split(v, ":")
	if len(parts) != 3 {
		return fmt.Errorf("want kind:start:length, as http503:30s:2m")
	}
	start, err := time.ParseDuration(parts[1])
	if err != nil {
		return err
	}
	length, err := time.ParseDuration(parts[2])
	if err != nil {
		return err
	}
	*o = append(*o, sim.Outage{Kind: parts[0], Start: sim.Duration(start), Length: sim.Duration(length)})
	return nil
}

func list(v string) []string {
	if v == "" {
		return nil
	}
	return strings.Split(v, ",")
}

func main() {
	addr := flag.String("addr", "127.0.0.1:8099", "listen address")
	postbackURL := flag.String("postback-url", "", "where delivery postbacks go (empty: none)")
	config := flag.String("config", "", "JSON config file (default: one account, key sim-api-key, FROM 60856, MMSID 1000-1009)")
	seed := flag.Int64("seed", 0, "seed for scenario mixes and fault rates (0: config's)")
	retry := flag.Duration("postback-retry-interval", 0, "wait before a postback retry (default 5m)")
	delay := flag.Duration("postback-delay", 0, "pause before each postback (default 50ms)")
	acceptTimeout := flag.Float64("accept-timeout", 0, "share of sends accepted and then never answered (the caller times out)")
	acceptReset := flag.Float64("accept-reset", 0, "share of sends accepted and then answered with a dropped connection")
	omitRef := flag.Float64("omit-client-reference", 0, "share of postbacks without CLIENT_REFERENCE")
	early := flag.Float64("early-postback", 0, "share of sends whose first postback comes before their answer")
	noReceipt := flag.String("no-receipt-carriers", "", "comma-separated SPIDs that send no delivery receipt (N101 only); SPIDs: "+strings.Join(sim.Carriers(), ","))
	silent := flag.String("silent-carriers", "", "comma-separated SPIDs that send no postback at all")
	rateLimit := flag.Float64("rate-limit", 0, "the account's calls per second over all callers; beyond it E113 (0: off)")
	minInterval := flag.Duration("min-interval", 0, "E106: least time between one API key's calls (0: off)")
	var outs outages
	flag.Var(&outs, "outage", "kind:start:length: every call fails (E503, http503, reset or refused) in that window after start; repeatable")
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
	// Accept-then-fail faults go first: they do not stop a request from
	// being processed, so the rules after them see the rest.
	var first []sim.Fault
	if *acceptTimeout > 0 {
		first = append(first, sim.Fault{Kind: "accept-hang", Rate: *acceptTimeout})
	}
	if *acceptReset > 0 {
		first = append(first, sim.Fault{Kind: "accept-reset", Rate: *acceptReset})
	}
	cfg.Faults = append(first, cfg.Faults...)
	if *omitRef > 0 {
		cfg.OmitClientReferenceRate = *omitRef
	}
	if *early > 0 {
		cfg.EarlyPostbackRate = *early
	}
	cfg.NoReceiptCarriers = append(cfg.NoReceiptCarriers, list(*noReceipt)...)
	cfg.SilentCarriers = append(cfg.SilentCarriers, list(*silent)...)
	cfg.Outages = append(cfg.Outages, outs...)
	if *rateLimit > 0 {
		cfg.RateLimit = *rateLimit
	}
	if *minInterval > 0 {
		cfg.MinInterval = sim.Duration(*minInterval)
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
