// Package procstop waits for a process the tests paused with SIGSTOP to be
// stopped. A signal is delivered asynchronously: on a loaded machine a
// thread of the process can still answer a request after kill(2) has
// returned, which makes a test of a hanging server flaky (slapd answered
// a bind and a search so, in the full suite).
package procstop

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"time"
)

// Wait returns once every thread of pid is stopped (state T or t in
// /proc/PID/task/TID/stat), or fails after timeout. Without /proc it
// returns at once: the signal was sent, which is all it can check there.
func Wait(pid int, timeout time.Duration) error {
	for deadline := time.Now().Add(timeout); ; time.Sleep(time.Millisecond) {
		stopped, err := allStopped(pid)
		if err != nil || stopped {
			return err
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("procstop: pid %d not stopped %v after SIGSTOP", pid, timeout)
		}
	}
}

func allStopped(pid int) (bool, error) {
	tasks, err := os.ReadDir(fmt.Sprintf("/proc/%d/task", pid))
	if errors.Is(err, os.ErrNotExist) {
		if _, statErr := os.Stat("/proc/self"); statErr != nil {
			return true, nil // no /proc here
		}
		return false, fmt.Errorf("procstop: pid %d is gone", pid)
	}
	if err != nil {
		return false, err
	}
	for _, task := range tasks {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/task/%s/stat", pid, task.Name()))
		if err != nil {
			continue // the thread ended
		}
		// The state follows the command's closing parenthesis.
		i := bytes.LastIndexByte(b, ')')
		if i < 0 || i+2 >= len(b) {
			return false, fmt.Errorf("procstop: unreadable /proc stat %q", b)
		}
		if st := b[i+2]; st != 'T' && st != 't' {
			return false, nil
		}
	}
	return true, nil
}
