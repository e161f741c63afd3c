// Command e2e-etcd runs a single-member etcd embedded in this process, for the
// end-to-end control plane started by scripts/e2e-cluster.sh. It listens only
// on loopback (plain HTTP: the apiserver is the only client and both run on
// the same host), stays in the foreground, and shuts down cleanly on SIGTERM
// or SIGINT so `e2e-cluster.sh down` leaves a consistent data directory.
package main

import (
	"flag"
	"fmt"
	"net/url"
	"os"
	"os/signal"
	"syscall"
	"time"

	"go.etcd.io/etcd/server/v3/embed"
)

func main() {
	dataDir := flag.String("data-dir", "", "etcd data directory (required)")
	clientPort := flag.Int("client-port", 2379, "loopback port for clients")
	peerPort := flag.Int("peer-port", 2380, "loopback port for the (single) peer")
	readyFile := flag.String("ready-file", "", "file written once etcd serves clients")
	logLevel := flag.String("log-level", "warn", "zap log level: debug, info, warn, error")
	flag.Parse()
	if *dataDir == "" {
		fmt.Fprintln(os.Stderr, "e2e-etcd: --data-dir is required")
		os.Exit(2)
	}
	if *clientPort <= 0 || *clientPort > 65535 || *peerPort <= 0 || *peerPort > 65535 {
		fmt.Fprintln(os.Stderr, "e2e-etcd: ports must be in 1..65535")
		os.Exit(2)
	}

	cfg := embed.NewConfig()
	cfg.Name = "e2e"
	cfg.Dir = *dataDir
	cfg.LogLevel = *logLevel
	cfg.Logger = "zap"
	cfg.LogOutputs = []string{"stderr"}
	client := url.URL{Scheme: "http", Host: fmt.Sprintf("127.0.0.1:%d", *clientPort)}
	peer := url.URL{Scheme: "http", Host: fmt.Sprintf("127.0.0.1:%d", *peerPort)}
	cfg.ListenClientUrls = []url.URL{client}
	cfg.AdvertiseClientUrls = []url.URL{client}
	cfg.ListenPeerUrls = []url.URL{peer}
	cfg.AdvertisePeerUrls = []url.URL{peer}
	cfg.InitialCluster = cfg.InitialClusterFromName(cfg.Name)
	// Test data only: losing the last writes on a crash is acceptable, and
	// skipping fsync keeps a shared 2-core machine's disk out of the way.
	cfg.UnsafeNoFsync = true

	e, err := embed.StartEtcd(cfg)
	if err != nil {
		fmt.Fprintf(os.Stderr, "e2e-etcd: start: %v\n", err)
		os.Exit(1)
	}
	select {
	case <-e.Server.ReadyNotify():
	case <-time.After(60 * time.Second):
		e.Server.Stop()
		e.Close()
		fmt.Fprintln(os.Stderr, "e2e-etcd: not ready within 60s")
		os.Exit(1)
	}
	if *readyFile != "" {
		if err := os.WriteFile(*readyFile, []byte(client.String()+"\n"), 0o644); err != nil {
			fmt.Fprintf(os.Stderr, "e2e-etcd: ready file: %v\n", err)
			e.Close()
			os.Exit(1)
		}
	}
	fmt.Fprintf(os.Stderr, "e2e-etcd: serving %s\n", client.String())

	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM, syscall.SIGINT)
	select {
	case s := <-sig:
		fmt.Fprintf(os.Stderr, "e2e-etcd: %v, stopping\n", s)
		e.Close()
	case err := <-e.Err():
		fmt.Fprintf(os.Stderr, "e2e-etcd: server error: %v\n", err)
		e.Close()
		os.Exit(1)
	}
}
