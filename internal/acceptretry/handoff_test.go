package acceptretry

import (
	"errors"
	"net"
	"sync"
	"testing"
)

// TestHandoff checks Give and Accept before and after End: a given
// connection reaches Accept; after End, Give refuses, Accept reports the
// error End recorded first (or net.ErrClosed), and only the first End
// counts.
func TestHandoff(t *testing.T) {
	boom := errors.New("boom")
	for _, tc := range []struct {
		name    string
		ends    []error
		wantErr error
	}{
		{"closed", []error{nil}, net.ErrClosed},
		{"failed", []error{boom}, boom},
		{"failed, then closed", []error{boom, nil}, boom},
		{"closed, then failed", []error{nil, boom}, net.ErrClosed},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := NewHandoff()
			a, b := net.Pipe()
			defer a.Close()
			defer b.Close()
			gave := make(chan bool, 1)
			go func() { gave <- h.Give(a) }()
			if c, err := h.Accept(); err != nil || c != a {
				t.Fatalf("Accept = %v, %v; want the connection given", c, err)
			}
			if !<-gave {
				t.Fatal("Give reported false for a connection Accept took")
			}
			for i, err := range tc.ends {
				if first := h.End(err); first != (i == 0) {
					t.Fatalf("End #%d reported first = %v", i+1, first)
				}
			}
			select {
			case <-h.Done():
			default:
				t.Fatal("Done not closed after End")
			}
			if h.Give(b) {
				t.Fatal("Give reported true after End")
			}
			if _, err := h.Accept(); err != tc.wantErr {
				t.Fatalf("Accept after End: %v, want %v", err, tc.wantErr)
			}
		})
	}
}

// TestRun checks that Run hands each connection to handle and, when the
// listener fails for good, ends the handoff with that error and closes
// the listener.
func TestRun(t *testing.T) {
	a, b := net.Pipe()
	defer a.Close()
	defer b.Close()
	fatal := errors.New("listener broke")
	ln := &closeCountingListener{fakeListener: fakeListener{errs: []error{timeoutErr{}}, conn: a}, failAfter: 2, err: fatal}
	h := NewHandoff()
	var got []net.Conn
	var wg sync.WaitGroup
	wg.Go(func() { Run(ln, h, func(c net.Conn) { got = append(got, c) }) })
	wg.Wait()
	if len(got) != 2 || got[0] != a || got[1] != a {
		t.Fatalf("handled %v, want the listener's connection twice", got)
	}
	if _, err := h.Accept(); err != fatal {
		t.Fatalf("Accept after the failure: %v, want %v", err, fatal)
	}
	if ln.closed != 1 {
		t.Fatalf("listener closed %d times, want 1", ln.closed)
	}
}

// closeCountingListener returns its connection failAfter times (after
// fakeListener's errors), then err, and counts Close calls.
type closeCountingListener struct {
	fakeListener
	failAfter, served int
	err               error
	closed            int
}

func (l *closeCountingListener) Accept() (net.Conn, error) {
	if len(l.errs) == 0 && l.served == l.failAfter {
		return nil, l.err
	}
	c, err := l.fakeListener.Accept()
	if err == nil {
		l.served++
	}
	return c, err
}

func (l *closeCountingListener) Close() error {
	l.closed++
	return nil
}
