package acceptretry

import (
	"errors"
	"net"
	"testing"

	"github.com/openderp/openderp/internal/leakcheck"
)

func TestMain(m *testing.M) {
	leakcheck.Main(m, "openderp/internal/acceptretry")
}

// fakeListener returns the errors in errs, one per Accept, then conn.
type fakeListener struct {
	net.Listener
	errs  []error
	conn  net.Conn
	calls int
}

func (l *fakeListener) Accept() (net.Conn, error) {
	l.calls++
	if len(l.errs) > 0 {
		err := l.errs[0]
		l.errs = l.errs[1:]
		return nil, err
	}
	return l.conn, nil
}

type timeoutErr struct{}

func (timeoutErr) Error() string   { return "too many open files" }
func (timeoutErr) Timeout() bool   { return true }
func (timeoutErr) Temporary() bool { return true }

func TestAccept(t *testing.T) {
	a, b := net.Pipe()
	defer a.Close()
	defer b.Close()
	fatal := errors.New("listener closed")
	for _, tc := range []struct {
		name      string
		errs      []error
		wantErr   error
		wantCalls int
	}{
		{"first try", nil, nil, 1},
		{"after temporary failures", []error{timeoutErr{}, timeoutErr{}, timeoutErr{}}, nil, 4},
		{"other error at once", []error{fatal, timeoutErr{}}, fatal, 1},
		{"temporary then fatal", []error{timeoutErr{}, fatal}, fatal, 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ln := &fakeListener{errs: tc.errs, conn: a}
			c, err := Accept(ln, make(chan struct{}))
			if !errors.Is(err, tc.wantErr) {
				t.Fatalf("err = %v, want %v", err, tc.wantErr)
			}
			if tc.wantErr == nil && c != a {
				t.Fatalf("conn = %v, want the listener's", c)
			}
			if ln.calls != tc.wantCalls {
				t.Errorf("Accept called %d times, want %d", ln.calls, tc.wantCalls)
			}
		})
	}
}

func TestAcceptStopsWhileWaiting(t *testing.T) {
	errs := make([]error, 100)
	for i := range errs {
		errs[i] = timeoutErr{}
	}
	ln := &fakeListener{errs: errs}
	done := make(chan struct{})
	close(done)
	if _, err := Accept(ln, done); !errors.Is(err, ErrStopped) {
		t.Fatalf("err = %v, want ErrStopped", err)
	}
	if ln.calls != 1 {
		t.Errorf("Accept called %d times after done, want 1", ln.calls)
	}
}
