// Package rie runs a Lambda bootstrap under the AWS Lambda Runtime
// Interface Emulator, as Lambda does, and invokes it. One emulator is one
// instance: Invoke is serialised, since concurrent invokes crash it.
package rie

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/mmsgate/mmsgate/internal/loopback"
)

// Instance is one running emulator with its function.
type Instance struct {
	Name string
	url  string
	cmd  *exec.Cmd
	mu   sync.Mutex // one invoke at a time
	http *http.Client

	logMu sync.Mutex
	inits []float64
	done  chan struct{}
}

// Options of Start.
type Options struct {
	Emulator  string        // path of aws-lambda-rie
	Bootstrap string        // path of the function's bootstrap
	Env       []string      // the function's environment (added to this process's PATH/HOME)
	Timeout   time.Duration // the function timeout (AWS_LAMBDA_FUNCTION_TIMEOUT)
	Memory    int           // MB
	Logs      io.Writer     // the function's and the emulator's output (nil: discarded)
}

var initReport = regexp.MustCompile(`INIT REPORT\(durationMs: ([0-9.]+)\)`)

// Start runs the emulator on free loopback ports.
func Start(ctx context.Context, name string, o Options) (*Instance, error) {
	apiPort, err := loopback.FreePort()
	if err != nil {
		return nil, err
	}
	runtimePort, err := loopback.FreePort()
	if err != nil {
		return nil, err
	}
	if o.Timeout == 0 {
		o.Timeout = 30 * time.Second
	}
	if o.Memory == 0 {
		o.Memory = 256
	}
	cmd := exec.Command(o.Emulator,
		"--runtime-interface-emulator-address", fmt.Sprintf("127.0.0.1:%d", apiPort),
		"--runtime-api-address", fmt.Sprintf("127.0.0.1:%d", runtimePort),
		o.Bootstrap)
	cmd.Env = append([]string{"PATH=" + os.Getenv("PATH"), "HOME=" + os.Getenv("HOME"),
		"AWS_LAMBDA_FUNCTION_NAME=" + name, "AWS_LAMBDA_FUNCTION_TIMEOUT=" + strconv.Itoa(int(o.Timeout.Seconds())),
		"AWS_LAMBDA_FUNCTION_MEMORY_SIZE=" + strconv.Itoa(o.Memory), "AWS_LAMBDA_FUNCTION_VERSION=$LATEST",
		"AWS_LAMBDA_LOG_FORMAT=JSON"}, o.Env...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	pr, pw := io.Pipe()
	cmd.Stdout, cmd.Stderr = pw, pw
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", o.Emulator, err)
	}
	i := &Instance{Name: name, url: fmt.Sprintf("http://127.0.0.1:%d/2015-03-31/functions/function/invocations", apiPort),
		cmd: cmd, http: &http.Client{Timeout: o.Timeout + 10*time.Second}, done: make(chan struct{})}
	logs := o.Logs
	if logs == nil {
		logs = io.Discard
	}
	go func() {
		defer close(i.done)
		sc := bufio.NewScanner(pr)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		for sc.Scan() {
			line := sc.Text()
			if m := initReport.FindStringSubmatch(line); m != nil {
				if v, err := strconv.ParseFloat(m[1], 64); err == nil {
					i.logMu.Lock()
					i.inits = append(i.inits, v)
					i.logMu.Unlock()
				}
			}
			fmt.Fprintln(logs, line)
		}
	}()
	go func() { cmd.Wait(); pw.Close() }()
	if err := loopback.Wait(ctx, fmt.Sprintf("127.0.0.1:%d", apiPort), 10*time.Second); err != nil {
		i.Close()
		return nil, fmt.Errorf("emulator for %s: %w", name, err)
	}
	return i, nil
}

// ErrTimeout is the emulator's "Task timed out" answer.
var ErrTimeout = errors.New("function timed out")

// Invoke runs the function once with payload and returns its answer. A
// function error (panic, error return) is an error holding the emulator's
// errorMessage/errorType JSON.
func (i *Instance) Invoke(ctx context.Context, payload []byte) ([]byte, error) {
	i.mu.Lock()
	defer i.mu.Unlock()
	// The invocation runs to its end even if the caller goes away, as on
	// Lambda: a cancelled call would release the lock while the emulator
	// is still busy, and the next invoke would then crash it.
	req, err := http.NewRequestWithContext(context.WithoutCancel(ctx), http.MethodPost, i.url, bytes.NewReader(payload))
	if err != nil {
		return nil, err
	}
	resp, err := i.http.Do(req)
	if err != nil {
		return nil, fmt.Errorf("invoke %s: %w", i.Name, err)
	}
	defer resp.Body.Close()
	out, err := io.ReadAll(io.LimitReader(resp.Body, 6<<20))
	if err != nil {
		return nil, err
	}
	if bytes.HasPrefix(out, []byte("Task timed out")) {
		return nil, fmt.Errorf("%w: %s", ErrTimeout, out)
	}
	if resp.StatusCode != http.StatusOK || bytes.Contains(out[:min(len(out), 200)], []byte(`"errorType"`)) {
		return out, fmt.Errorf("%s returned an error (HTTP %d): %s", i.Name, resp.StatusCode, strings.TrimSpace(string(out)))
	}
	return out, nil
}

// InitDurations lists the INIT durations (ms) the emulator reported.
func (i *Instance) InitDurations() []float64 {
	i.logMu.Lock()
	defer i.logMu.Unlock()
	return append([]float64(nil), i.inits...)
}

// KillRuntime kills the function process (not the emulator), as a crash
// would, and says how many processes it killed; the emulator starts the
// function again on the next invoke.
func (i *Instance) KillRuntime() int {
	n := 0
	for _, pid := range i.runtimePids() {
		if syscall.Kill(pid, syscall.SIGKILL) == nil {
			n++
		}
	}
	return n
}

// runtimePids lists the emulator's child processes (any of its threads
// may have started the function).
func (i *Instance) runtimePids() []int {
	tasks, _ := filepath.Glob(fmt.Sprintf("/proc/%d/task/*/children", i.cmd.Process.Pid))
	var pids []int
	for _, t := range tasks {
		b, err := os.ReadFile(t)
		if err != nil {
			continue
		}
		for _, f := range strings.Fields(string(b)) {
			if pid, err := strconv.Atoi(f); err == nil {
				pids = append(pids, pid)
			}
		}
	}
	return pids
}

// Pid is the emulator's process id (for memory measurements).
func (i *Instance) Pid() int { return i.cmd.Process.Pid }

// Close stops the emulator and the function.
func (i *Instance) Close() {
	if i.cmd.Process != nil {
		syscall.Kill(-i.cmd.Process.Pid, syscall.SIGKILL)
	}
	select {
	case <-i.done:
	case <-time.After(2 * time.Second):
	}
}

// RuntimeRSS is the peak resident memory (VmHWM, KiB) of the function
// process now running under the emulator; 0 if none is running.
func (i *Instance) RuntimeRSS() int64 {
	var peak int64
	for _, pid := range i.runtimePids() {
		st, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
		if err != nil {
			continue
		}
		for _, line := range strings.Split(string(st), "\n") {
			if v, ok := strings.CutPrefix(line, "VmHWM:"); ok {
				kb, _ := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
				peak = max(peak, kb)
			}
		}
	}
	return peak
}
