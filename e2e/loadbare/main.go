// Command loadbare is the baseline of the forward-auth load test
// (e2e/load_test.go): the least a Go net/http server can do to answer a
// forward-auth check, built and run as its own process exactly like the
// broker, so that the broker's throughput can be stated as a fraction of it.
//
// Every request, whatever its method, path, headers or body, gets
//
//	HTTP/1.1 202 Accepted
//	Cache-Control: no-store
//	Vary: Cookie
//	X-Auth-Request-User: local:alice
//	X-Auth-Request-Provider: local
//	X-Auth-Request-Preferred-Username: alice
//	X-Auth-Request-Groups: admins,staff
//	Date: …
//	Content-Length: 0
//
// the same status and headers the broker sends to a signed-in local user
// alice in the groups admins and staff, so both answers are the same size on
// the wire. It reads no cookie, keeps no state and logs nothing: the header
// values are built once and assigned to each response's header map, not
// formatted. The http.Server is the broker's (broker.ServerConfig's
// defaults: its timeouts and header limit).
//
// It listens on -listen (default 127.0.0.1:0, a free loopback port), prints
// "loadbare listening on http://ADDR" on stdout once it accepts connections,
// and exits with status 0 after SIGTERM or SIGINT, once in-flight requests
// are done (at most 5 s). With LOADBARE_CPUPROFILE set it writes a CPU
// profile of its run into that file (the harness's LOAD_CPUPROFILE), to
// compare with the broker's.
//
// TEST-ONLY.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/signal"
	"runtime/pprof"
	"syscall"
	"time"

	"github.com/oidc-broker/oidc-broker/broker"
)

// answer is the response header of every request, built once.
var answer = http.Header{
	"Cache-Control":                     {"no-store"},
	"Vary":                              {"Cookie"},
	"X-Auth-Request-User":               {"local:alice"},
	"X-Auth-Request-Provider":           {"local"},
	"X-Auth-Request-Preferred-Username": {"alice"},
	"X-Auth-Request-Groups":             {"admins,staff"},
}

func handle(w http.ResponseWriter, _ *http.Request) {
	h := w.Header()
	for k, v := range answer {
		h[k] = v // shared, never modified: the server only reads them
	}
	w.WriteHeader(http.StatusAccepted)
}

func main() {
	listen := flag.String("listen", "127.0.0.1:0", "address to listen on")
	flag.Parse()
	if path := os.Getenv("LOADBARE_CPUPROFILE"); path != "" {
		f, err := os.Create(path)
		if err == nil {
			err = pprof.StartCPUProfile(f)
		}
		if err != nil {
			fmt.Fprintln(os.Stderr, "loadbare:", err)
			os.Exit(1)
		}
		defer f.Close()
		defer pprof.StopCPUProfile()
	}
	if err := run(*listen); err != nil {
		fmt.Fprintln(os.Stderr, "loadbare:", err)
		os.Exit(1)
	}
}

func run(addr string) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	hs := broker.ServerConfig{}.NewHTTPServer("", http.HandlerFunc(handle))
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	errc := make(chan error, 1)
	go func() { errc <- hs.Serve(ln) }()
	fmt.Printf("loadbare listening on http://%s\n", ln.Addr())
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := hs.Shutdown(sctx); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}
