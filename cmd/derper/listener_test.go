package main

import (
	"context"
	"errors"
	"io"
	"net"
	"runtime"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

func TestLimitedListener(t *testing.T) {
	ln, err := listen(context.Background(), "127.0.0.1:0", time.Minute, 15*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	// One token, never refilled: the first connection passes, the rest
	// are closed, and Accept keeps going.
	l := newLimitedListener(ln, 0, 1)
	defer l.Close()
	accepted := make(chan net.Conn, 4)
	done := make(chan error, 1)
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				done <- err
				return
			}
			accepted <- c
		}
	}()
	dial := func() net.Conn {
		c, err := net.Dial("tcp", l.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	c1 := dial()
	defer c1.Close()
	sc := <-accepted
	defer sc.Close()

	if runtime.GOOS == "linux" {
		raw, _ := sc.(*net.TCPConn).SyscallConn()
		var v int
		raw.Control(func(fd uintptr) { v, _ = unix.GetsockoptInt(int(fd), unix.IPPROTO_TCP, unix.TCP_USER_TIMEOUT) })
		if v != 15000 {
			t.Errorf("TCP_USER_TIMEOUT = %d, want 15000", v)
		}
		raw.Control(func(fd uintptr) { v, _ = unix.GetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_KEEPALIVE) })
		if v == 0 {
			t.Error("SO_KEEPALIVE off")
		}
	}

	for range 3 {
		c := dial()
		c.SetReadDeadline(time.Now().Add(5 * time.Second))
		if _, err := c.Read(make([]byte, 1)); err != io.EOF && !isReset(err) {
			t.Errorf("refused conn read: %v, want EOF", err)
		}
		c.Close()
	}
	if got := l.rejected.Value(); got != 3 {
		t.Errorf("rejected = %d, want 3", got)
	}
	if got := l.accepted.Value(); got != 1 {
		t.Errorf("accepted = %d, want 1", got)
	}
	select {
	case err := <-done:
		t.Fatalf("Accept ended: %v", err)
	default:
	}
	l.Close()
	if err := <-done; err == nil {
		t.Error("Accept after Close: nil error")
	}
	if len(accepted) != 0 {
		t.Error("refused connection was handed out")
	}
}

func isReset(err error) bool {
	var op *net.OpError
	ok := err != nil && errors.As(err, &op)
	return ok
}

func TestUnlimitedListener(t *testing.T) {
	ln, err := listen(context.Background(), "127.0.0.1:0", 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	l := newLimitedListener(ln, opts().acceptConnLimit, opts().acceptConnBurst)
	defer l.Close()
	go func() {
		for range 20 {
			c, err := net.Dial("tcp", l.Addr().String())
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	for range 20 {
		c, err := l.Accept()
		if err != nil {
			t.Fatal(err)
		}
		c.Close()
	}
	if l.rejected.Value() != 0 {
		t.Error("default limits rejected a connection")
	}
}

// TestListenNoMPTCP: accepted connections are plain TCP, so that
// TCP_USER_TIMEOUT applies (Go enables MPTCP on listeners by default).
func TestListenNoMPTCP(t *testing.T) {
	ln, err := listen(t.Context(), "127.0.0.1:0", time.Minute, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	s, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if mp, err := s.(*net.TCPConn).MultipathTCP(); err != nil || mp {
		t.Errorf("MPTCP = %v, %v", mp, err)
	}
}
