//go:build cpuprofile

package main

import (
	"fmt"
	"os"
	"runtime"
	"runtime/pprof"
)

// A binary built with -tags cpuprofile writes a CPU profile of its whole
// run into the file that OIDC_BROKER_CPUPROFILE names, and the allocations
// of its run (sampled every 4 KiB) into OIDC_BROKER_MEMPROFILE's. Only the load
// harness builds one (e2e/load_test.go, LOAD_CPUPROFILE): profiles of the
// broker taken under exactly the conditions it measures (pinned to one
// core, GOMAXPROCS=1, wrk on another). Release builds have no such code,
// and no endpoint serves a profile.
func init() {
	if path := os.Getenv("OIDC_BROKER_MEMPROFILE"); path != "" {
		runtime.MemProfileRate = 4096
		stopMemProfile = func() {
			if f, err := os.Create(path); err == nil {
				_ = pprof.Lookup("allocs").WriteTo(f, 0)
				_ = f.Close()
			}
		}
	}
	path := os.Getenv("OIDC_BROKER_CPUPROFILE")
	if path == "" {
		stopCPUProfile = func() { stopMemProfile() }
		return
	}
	f, err := os.Create(path)
	if err == nil {
		err = pprof.StartCPUProfile(f)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "oidc-broker: OIDC_BROKER_CPUPROFILE:", err)
		os.Exit(1)
	}
	stopCPUProfile = func() {
		pprof.StopCPUProfile()
		_ = f.Close()
		stopMemProfile()
	}
}

// stopMemProfile writes the allocation profile (OIDC_BROKER_MEMPROFILE).
var stopMemProfile = func() {}
