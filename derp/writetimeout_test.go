package derp

import (
	"net"
	"testing"
	"time"
)

// deadlineConn records the last write deadline set on it.
type deadlineConn struct {
	net.Conn
	calls int
	last  time.Time
}

func (c *deadlineConn) SetWriteDeadline(t time.Time) error {
	c.calls++
	c.last = t
	return nil
}

func TestWriteDeadline(t *testing.T) {
	tests := []struct {
		name    string
		timeout time.Duration
		mesh    bool
		want    time.Duration // 0: no deadline set at all
	}{
		{"default", 0, false, 2 * time.Second},
		{"configured", 5 * time.Second, false, 5 * time.Second},
		{"disabled", -1, false, 0},
		{"mesh default", 0, true, 30 * time.Second},
		{"mesh short", 100 * time.Millisecond, true, 30 * time.Second},
		{"mesh disabled", -1, true, 30 * time.Second},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			nc := &deadlineConn{}
			c := &sclient{s: &Server{WriteTimeout: tt.timeout}, nc: nc, canMesh: tt.mesh}
			before := time.Now()
			c.setWriteDeadline()
			if tt.want == 0 {
				if nc.calls != 0 {
					t.Fatalf("deadline set to %v, want none", nc.last)
				}
				return
			}
			if nc.calls != 1 {
				t.Fatalf("%d deadline calls", nc.calls)
			}
			if d := nc.last.Sub(before); d < tt.want || d > tt.want+time.Second {
				t.Errorf("deadline %v ahead, want %v", d, tt.want)
			}
		})
	}
}
