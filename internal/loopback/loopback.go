// Package loopback hands out loopback ports for local servers (dynalite,
// moto, the emulators) and waits for them to listen.
package loopback

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// span is how many ports below the kernel's ephemeral range FreePort uses.
const span = 12000

var (
	mu    sync.Mutex
	next  int        // the next port to try, within [lo, hi)
	held  []*os.File // the ports' locks, held for the process's life
	lo    int
	hi    int
	ready bool
)

// FreePort hands out a free loopback port that no other caller of FreePort,
// in this process or another, gets while this process lives. The port is
// chosen and then bound by a child (node, python, the emulator), so two
// guards close the gap between: it lies below the kernel's ephemeral range
// (a listener on ":0", such as a test's own server, is never given it), and
// a lock file per port, held until the process exits, keeps other test
// binaries running beside this one off it.
func FreePort() (int, error) {
	mu.Lock()
	defer mu.Unlock()
	if !ready {
		lo, hi = portRange()
		next = lo + rand.IntN(hi-lo)
		ready = true
	}
	dir := filepath.Join(os.TempDir(), "mmsgate-ports")
	if err := os.MkdirAll(dir, 0o777); err != nil {
		return 0, err
	}
	for range hi - lo {
		port := next
		next++
		if next == hi {
			next = lo
		}
		f, ok := lock(dir, port)
		if !ok {
			continue
		}
		l, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", port))
		if err != nil {
			f.Close() // in use by something else: leave it
			continue
		}
		l.Close()
		held = append(held, f)
		return port, nil
	}
	return 0, fmt.Errorf("no free loopback port in %d-%d", lo, hi-1)
}

// lock takes port's lock file without waiting.
func lock(dir string, port int) (*os.File, bool) {
	f, err := os.OpenFile(filepath.Join(dir, strconv.Itoa(port)), os.O_CREATE|os.O_RDWR, 0o666)
	if err != nil {
		return nil, false
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		return nil, false
	}
	return f, true
}

// portRange is the span of ports just below the kernel's ephemeral range
// (32768 when it cannot be read), never below 1024.
func portRange() (lo, hi int) {
	hi = 32768
	if b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range"); err == nil {
		if f := strings.Fields(string(b)); len(f) == 2 {
			if n, err := strconv.Atoi(f[0]); err == nil && n > 1024+1000 {
				hi = n
			}
		}
	}
	return max(hi-span, 1024), hi
}

// Wait returns once addr accepts a connection, or errs after timeout.
func Wait(ctx context.Context, addr string, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		c, err := net.DialTimeout("tcp", addr, 200*time.Millisecond)
		if err == nil {
			c.Close()
			return nil
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return fmt.Errorf("nothing listens on %s: %w", addr, err)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
