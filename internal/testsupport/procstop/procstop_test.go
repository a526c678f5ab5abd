package procstop

import (
	"os/exec"
	"syscall"
	"testing"
	"time"
)

// TestWait: a running process is not reported stopped; after SIGSTOP it
// is, and Wait returns.
func TestWait(t *testing.T) {
	cmd := exec.Command("sleep", "30")
	if err := cmd.Start(); err != nil {
		t.Skip("no sleep command:", err)
	}
	defer func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }()
	if err := Wait(cmd.Process.Pid, 50*time.Millisecond); err == nil {
		t.Fatal("a running process was reported stopped")
	}
	if err := cmd.Process.Signal(syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	if err := Wait(cmd.Process.Pid, 5*time.Second); err != nil {
		t.Fatal(err)
	}
	_ = cmd.Process.Signal(syscall.SIGCONT)
}
