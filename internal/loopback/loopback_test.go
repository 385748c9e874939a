package loopback

import (
	"context"
	"fmt"
	"net"
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
