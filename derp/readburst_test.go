package derp

import (
	"bufio"
	"net"
	"testing"
)

// TestAwaitDataNotesParking checks what the read loop's burst bound
// relies on: awaitData reports that it blocked in the poller exactly when
// a non-blocking read found the socket empty.
func TestAwaitDataNotesParking(t *testing.T) {
	if !canReadNonblocking {
		t.Skip("no non-blocking reads on this platform")
	}
	tests := []struct {
		name      string
		sendFirst bool // the data is sent before awaitData is called
	}{
		{"data waiting", true},
		{"no data yet", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			defer ln.Close()
			cc, err := net.Dial("tcp", ln.Addr().String())
			if err != nil {
				t.Fatal(err)
			}
			defer cc.Close()
			sc, err := ln.Accept()
			if err != nil {
				t.Fatal(err)
			}
			defer sc.Close()

			c := &sclient{}
			c.initReader(sc.(*net.TCPConn), bufio.NewReader(sc))
			if c.rs.raw == nil {
				t.Fatal("no raw connection for a TCP socket")
			}
			fill := c.rs.fill
			missed := make(chan struct{})
			misses := 0 // written by awaitData's goroutine, read after done
			c.rs.fill = func(fd uintptr) bool {
				ok := fill(fd)
				if !ok {
					if misses == 0 {
						close(missed)
					}
					misses++
				}
				return ok
			}
			if tt.sendFirst {
				if _, err := cc.Write([]byte("x")); err != nil {
					t.Fatal(err)
				}
			}
			done := make(chan error, 1)
			go func() { done <- c.awaitData() }()
			if !tt.sendFirst {
				<-missed // awaitData found nothing and parks
				if _, err := cc.Write([]byte("x")); err != nil {
					t.Fatal(err)
				}
			}
			if err := <-done; err != nil {
				t.Fatal(err)
			}
			defer c.releaseReader()
			if b, err := c.br.ReadByte(); err != nil || b != 'x' {
				t.Fatalf("read %q, %v; want x", b, err)
			}
			if want := misses > 0; c.rs.parked != want {
				t.Errorf("parked = %v after %d empty reads, want %v", c.rs.parked, misses, want)
			}
			if !tt.sendFirst && !c.rs.parked {
				t.Error("not parked although the socket was empty")
			}
		})
	}
}
