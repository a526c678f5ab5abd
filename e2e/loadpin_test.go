//go:build e2e

package e2e

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"
)

// cpuPlan is where the load harnesses run what. Pinned (taskset, at least
// two CPUs allowed), the server under test runs alone on one CPU with
// GOMAXPROCS=1, and everything else (wrk, the IdP, redis-server, the test's
// own process) on the others; unpinned, everything shares every CPU, and
// the load generator and the neighbours compress every ratio toward 1.
type cpuPlan struct {
	taskset string // "" when not pinned
	server  string // the server under test's CPU ("1")
	others  string // the other CPUs, a taskset list ("0")
}

// planCPUs pins the test's own process to the other CPUs (until the test
// ends) and returns the plan, or an unpinned plan where taskset or a
// second CPU is missing.
func planCPUs(t *testing.T) cpuPlan {
	t.Helper()
	path, err := exec.LookPath("taskset")
	allowed := allowedCPUs()
	if err != nil || len(allowed) < 2 {
		t.Logf("load: not pinned (taskset: %v; CPUs allowed: %v)", err, allowed)
		return cpuPlan{}
	}
	p := cpuPlan{taskset: path, server: strconv.Itoa(allowed[1])}
	rest := []string{strconv.Itoa(allowed[0])}
	for _, c := range allowed[2:] {
		rest = append(rest, strconv.Itoa(c))
	}
	p.others = strings.Join(rest, ",")
	all := make([]string, len(allowed))
	for i, c := range allowed {
		all[i] = strconv.Itoa(c)
	}
	p.move(t, os.Getpid(), p.others)
	t.Cleanup(func() { p.move(t, os.Getpid(), strings.Join(all, ",")) })
	return p
}

// pinned reports whether the plan pins.
func (p cpuPlan) pinned() bool { return p.taskset != "" }

// String is the plan for the reports.
func (p cpuPlan) String() string {
	if !p.pinned() {
		return "not pinned (no taskset or one CPU): ratios are compressed toward 1"
	}
	return fmt.Sprintf("pinned: the server under test alone on CPU %s with GOMAXPROCS=1; wrk, IdP, redis-server and the test on CPU %s",
		p.server, p.others)
}

// serverCommand is a command that runs a Go server under test: on the
// server's CPU with GOMAXPROCS=1 when pinned.
func (p cpuPlan) serverCommand(env []string, name string, args ...string) *exec.Cmd {
	cmd := p.command(p.server, name, args...)
	cmd.Env = append(os.Environ(), env...)
	if p.pinned() {
		cmd.Env = append(cmd.Env, "GOMAXPROCS=1")
	}
	return cmd
}

// otherCommand is a command for the other CPUs (wrk, the IdP).
func (p cpuPlan) otherCommand(ctx context.Context, name string, args ...string) *exec.Cmd {
	if !p.pinned() {
		return exec.CommandContext(ctx, name, args...)
	}
	return exec.CommandContext(ctx, p.taskset, append([]string{"-c", p.others, name}, args...)...)
}

// command runs name through taskset on cpus when pinned. taskset execs
// the program: the process's ID is the program's.
func (p cpuPlan) command(cpus, name string, args ...string) *exec.Cmd {
	if !p.pinned() {
		return exec.Command(name, args...)
	}
	return exec.Command(p.taskset, append([]string{"-c", cpus, name}, args...)...)
}

// away moves a running process (all its threads) to the other CPUs:
// redis-server, which the test support starts.
func (p cpuPlan) away(t *testing.T, pid int) {
	t.Helper()
	if p.pinned() {
		p.move(t, pid, p.others)
	}
}

func (p cpuPlan) move(t *testing.T, pid int, cpus string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if out, err := exec.CommandContext(ctx, p.taskset, "-a", "-p", "-c", cpus, strconv.Itoa(pid)).CombinedOutput(); err != nil {
		t.Fatalf("taskset -a -p -c %s %d: %v\n%s", cpus, pid, err, out)
	}
}

// allowedCPUs lists the CPUs this process may run on (Cpus_allowed_list in
// /proc/self/status, such as "0-1" or "0,2-3"); nil when unknown.
func allowedCPUs() []int {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return nil
	}
	for line := range strings.SplitSeq(string(b), "\n") {
		list, ok := strings.CutPrefix(line, "Cpus_allowed_list:")
		if !ok {
			continue
		}
		var cpus []int
		for part := range strings.SplitSeq(strings.TrimSpace(list), ",") {
			lo, hi, isRange := strings.Cut(part, "-")
			a, err1 := strconv.Atoi(lo)
			b := a
			var err2 error
			if isRange {
				b, err2 = strconv.Atoi(hi)
			}
			if err1 != nil || err2 != nil || b < a {
				return nil
			}
			for c := a; c <= b; c++ {
				cpus = append(cpus, c)
			}
		}
		return cpus
	}
	return nil
}
