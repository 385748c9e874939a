package loopback

import (
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"
)

func TestWait(t *testing.T) {
	port, err := FreePort()
	if err != nil || port == 0 {
		t.Fatal(port, err)
	}
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	if err := Wait(context.Background(), addr, 50*time.Millisecond); err == nil {
		t.Fatal("Wait succeeded with nothing listening")
	}
	l, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	if err := Wait(context.Background(), addr, time.Second); err != nil {
		t.Fatal(err)
	}
}

// TestFreePortHandsOutEachPortOnce: ports handed out side by side are
// distinct, outside the kernel's ephemeral range, locked against other
// processes, and a port something else listens on is skipped.
func TestFreePortHandsOutEachPortOnce(t *testing.T) {
	const n = 64
	ports := make(chan int, n)
	var wg sync.WaitGroup
	for range n {
		wg.Go(func() {
			p, err := FreePort()
			if err != nil {
				t.Error(err)
			}
			ports <- p
		})
	}
	wg.Wait()
	close(ports)
	seen := map[int]bool{}
	from, to := portRange()
	for p := range ports {
		if seen[p] {
			t.Errorf("port %d handed out twice", p)
		}
		seen[p] = true
		if p < from || p >= to {
			t.Errorf("port %d outside %d-%d, below the ephemeral range", p, from, to-1)
		}
		// Another process opening the lock file gets no lock (flock is per
		// open file, so a second open here stands for it).
		if f, ok := lock(filepath.Join(os.TempDir(), "mmsgate-ports"), p); ok {
			f.Close()
			t.Errorf("port %d not locked against other processes", p)
		}
	}

	// A port something listens on is skipped.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	busy := l.Addr().(*net.TCPAddr).Port
	mu.Lock()
	saved := [2]int{lo, hi}
	lo, hi, next = busy, busy+50, busy
	mu.Unlock()
	defer func() { mu.Lock(); lo, hi = saved[0], saved[1]; mu.Unlock() }()
	p, err := FreePort()
	if err != nil {
		t.Fatal(err)
	}
	if p == busy {
		t.Errorf("handed out %d, which a listener holds", p)
	}
}
