//go:build e2e

package e2e

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// brokerBinary is the path of the oidc-broker binary that TestMain builds once per run.
var brokerBinary string

// Time limits of the harness.
const (
	startTimeout = 15 * time.Second // from exec to the URL on stdout
	stopTimeout  = 5 * time.Second  // from SIGTERM to exit
)

func TestMain(m *testing.M) {
	os.Exit(runTests(m))
}

// runTests builds the broker into a temporary directory, runs the tests and removes the
// directory; a separate function so that the deferred removal runs before os.Exit.
func runTests(m *testing.M) int {
	dir, err := os.MkdirTemp("", "oidc-broker-e2e-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2e:", err)
		return 1
	}
	defer os.RemoveAll(dir)
	brokerBinary, err = buildBroker(dir)
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2e:", err)
		return 1
	}
	return m.Run()
}

// buildBroker runs "go build" for ./cmd/oidc-broker into dir and returns the binary's path.
// When the tests run with the race detector, so does the broker: a data race in it then
// fails the test that provoked it (see [demoBroker.stop]).
func buildBroker(dir string) (string, error) {
	root, err := moduleRoot()
	if err != nil {
		return "", err
	}
	bin := filepath.Join(dir, "oidc-broker")
	args := []string{"build", "-o", bin}
	if raceEnabled {
		args = append(args, "-race")
	}
	cmd := exec.Command("go", append(args, "./cmd/oidc-broker")...)
	cmd.Dir = root
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build ./cmd/oidc-broker: %w\n%s", err, out)
	}
	return bin, nil
}

// moduleRoot walks up from the working directory to the directory that holds go.mod.
func moduleRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("no go.mod above the working directory")
		}
		dir = parent
	}
}

// demoBroker is a running "oidc-broker demo" subprocess: two demo IdPs, the demo app and the
// broker in front of it.
type demoBroker struct {
	// URL is the broker's public URL, such as http://127.0.0.1:40123 (no trailing slash).
	URL string

	cmd      *exec.Cmd
	stderr   *syncBuffer
	exited   chan struct{} // closed when the process has exited; then waitErr is set
	waitErr  error
	reported bool // the unclean exit has been reported already
}

// name says which command runs, for messages: "oidc-broker demo" or
// "oidc-broker serve" (also when it runs through taskset).
func (b *demoBroker) name() string {
	for _, a := range b.cmd.Args[1:] {
		if a == "demo" || a == "serve" {
			return "oidc-broker " + a
		}
	}
	return "oidc-broker"
}

// bannerURL finds the broker's URL in the banner that "oidc-broker demo" prints.
var bannerURL = regexp.MustCompile(`Open (http://127\.0\.0\.1:\d+)/`)

// startDemo starts "oidc-broker demo" on a free loopback port and waits until it has printed
// its URL. It stops the process when the test ends, and logs its stderr if the test failed.
func startDemo(t *testing.T, extraArgs ...string) *demoBroker {
	t.Helper()
	args := append([]string{"demo", "--listen", "127.0.0.1:0"}, extraArgs...)
	b := &demoBroker{
		cmd:    exec.Command(brokerBinary, args...),
		stderr: &syncBuffer{},
		exited: make(chan struct{}),
	}
	b.cmd.Stderr = b.stderr
	stdout, err := b.cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := b.cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", brokerBinary, err)
	}
	urls := make(chan string, 1)
	go func() {
		scanBanner(stdout, urls)
		// Wait closes the pipe, so it must come after the last read: at EOF, which is
		// when the process exits.
		b.waitErr = b.cmd.Wait()
		close(b.exited)
	}()
	t.Cleanup(func() { b.stop(t) })

	timer := time.NewTimer(startTimeout)
	defer timer.Stop()
	select {
	case b.URL = <-urls:
		return b
	case <-b.exited:
		b.reported = true
		t.Fatalf("oidc-broker demo exited before printing its URL: %v", b.waitErr)
	case <-timer.C:
		t.Fatalf("oidc-broker demo printed no URL within %v", startTimeout)
	}
	return nil
}

// scanBanner sends the first URL of the banner on urls and then drains r, so the process
// never blocks on a full pipe.
func scanBanner(r io.Reader, urls chan<- string) {
	sc := bufio.NewScanner(r)
	found := false
	for sc.Scan() {
		if m := bannerURL.FindStringSubmatch(sc.Text()); m != nil && !found {
			found = true
			urls <- m[1]
		}
	}
	_, _ = io.Copy(io.Discard, r)
}

// stop sends SIGTERM, waits for a clean exit (killing the process after [stopTimeout]), and
// fails the test on an unclean exit, an exit before the test ended, or a data race report.
// It logs stderr if the test failed.
func (b *demoBroker) stop(t *testing.T) {
	t.Helper()
	if err := b.terminate(); err != nil && !b.reported {
		t.Error(err)
	}
	logs := b.stderr.String()
	if strings.Contains(logs, "WARNING: DATA RACE") {
		t.Errorf("the race detector reported a data race in oidc-broker")
	}
	if t.Failed() {
		t.Logf("%s stderr:\n%s", b.name(), logs)
	}
}

// terminate ends the process and says how that went.
func (b *demoBroker) terminate() error {
	select {
	case <-b.exited:
		return fmt.Errorf("%s exited during the test: %v", b.name(), b.waitErr)
	default:
	}
	_ = b.cmd.Process.Signal(syscall.SIGTERM)
	timer := time.NewTimer(stopTimeout)
	defer timer.Stop()
	select {
	case <-b.exited:
		if b.waitErr != nil {
			return fmt.Errorf("%s did not exit cleanly after SIGTERM: %w", b.name(), b.waitErr)
		}
		return nil
	case <-timer.C:
		_ = b.cmd.Process.Kill()
		<-b.exited
		return fmt.Errorf("%s still ran %v after SIGTERM; killed it", b.name(), stopTimeout)
	}
}

// get sends a GET for path to the broker with a plain client that neither follows redirects
// nor keeps cookies.
func (b *demoBroker) get(t *testing.T, path string) *http.Response {
	t.Helper()
	client := &http.Client{
		Timeout:       10 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	resp, err := client.Get(b.URL + path)
	if err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
	t.Cleanup(func() { _ = resp.Body.Close() })
	return resp
}

// syncBuffer is a bytes.Buffer safe for one writer and concurrent readers.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
