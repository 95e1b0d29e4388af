//go:build unix

package derp

import (
	"bufio"
	"errors"
	"net"
	"syscall"
	"testing"
	"time"

	"github.com/openderp/openderp/key"
)

// A client that leaves gracefully (it stops sending but reads until the
// relay closes) must receive every packet the relay counted as sent to it:
// when its read side ends while a writer is blocked mid-burst on its full
// socket, shutdown lets that burst finish before closing. Before the fix,
// the close discarded the burst although packets_sent had counted it.
func TestShutdownLetsBurstFinish(t *testing.T) {
	ts := newTestServer(t)
	sender := ts.dial(t)

	// The receiver: a raw TCP client with a small receive buffer, so the
	// relay's writer blocks quickly.
	recvKey := key.NewNode()
	d := net.Dialer{Control: smallRcvBuf}
	nc, err := d.Dial("tcp", ts.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	tcp := nc.(*net.TCPConn)
	rc, err := NewClient(recvKey, nc, bufio.NewReadWriter(bufio.NewReader(nc), bufio.NewWriter(nc)), t.Logf)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := recvMsg(t, rc).(ServerInfoMessage); !ok {
		t.Fatal("no ServerInfo")
	}
	dst := recvKey.Public()
	waitFor(t, "receiver registered", func() bool {
		ts.s.mu.Lock()
		defer ts.s.mu.Unlock()
		return ts.s.clients[dst] != nil
	})
	ts.s.mu.Lock()
	sc := ts.s.clients[dst].active
	ts.s.mu.Unlock()

	const n = 8000 // more than the relay socket's autotuned send buffer
	pkt := make([]byte, 1200)
	sendDone := make(chan error, 1)
	go func() {
		for i := range n {
			pkt[0] = byte(i)
			if err := sender.Send(dst, pkt); err != nil {
				sendDone <- err
				return
			}
		}
		sendDone <- nil
	}()
	waitFor(t, "relay writer blocked on the receiver's socket", func() bool {
		return sc.writeSince.Load() != 0
	})

	// Leave gracefully: stop sending, keep reading until the relay closes.
	if err := tcp.CloseWrite(); err != nil {
		t.Fatal(err)
	}
	var got int64
	nc.SetReadDeadline(time.Now().Add(20 * time.Second))
	for {
		m, err := rc.Recv()
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				t.Fatal("relay did not close the connection")
			}
			break
		}
		if _, ok := m.(ReceivedPacket); ok {
			got++
		}
	}
	waitFor(t, "receiver unregistered", func() bool {
		ts.s.mu.Lock()
		defer ts.s.mu.Unlock()
		return ts.s.clients[dst] == nil
	})
	if got == 0 {
		t.Fatal("received no packets; the test did not exercise a blocked writer")
	}
	counted := sc.stats.txPkts.Load()
	if got != counted {
		t.Errorf("receiver got %d packets, relay counted %d as sent to it: %d lost uncounted", got, counted, counted-got)
	}
	sender.Close()
	<-sendDone
}

// smallRcvBuf shrinks a socket's receive buffer before it connects.
func smallRcvBuf(_, _ string, c syscall.RawConn) error {
	var serr error
	err := c.Control(func(fd uintptr) {
		serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 4096)
	})
	if err != nil {
		return err
	}
	return serr
}
