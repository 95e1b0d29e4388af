package derp

import (
	"testing"
	"time"

	"github.com/openderp/openderp/key"
)

func TestUnknownFrameSizeLimit(t *testing.T) {
	s := NewServer(key.NewNode(), t.Logf)
	defer s.Close()
	tests := []struct {
		name      string
		typ       FrameType
		n         int
		keepsConn bool
	}{
		{"unknown type, empty", 0x30, 0, true},
		{"unknown type at the limit", 0x30, 65568, true},
		{"client-sent Pong at the limit", FramePong, 65568, true},
		{"unknown type above the limit", 0x30, 65569, false},
		{"server-only type above the limit", FrameServerInfo, 1 << 20, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := pipeClientOpts(t, s, "192.0.2.3:3", ConnOptions{})
			if err := c.sendSmall(tt.typ, make([]byte, tt.n)); err != nil {
				if tt.keepsConn {
					t.Fatal(err)
				}
				return // closed while we were still writing
			}
			c.SendPing([8]byte{1})
			c.nc.SetReadDeadline(time.Now().Add(10 * time.Second))
			for {
				m, err := c.Recv()
				if err != nil {
					if tt.keepsConn {
						t.Fatalf("connection closed: %v", err)
					}
					return
				}
				if _, ok := m.(PongMessage); ok {
					if !tt.keepsConn {
						t.Fatal("got Pong; want the connection closed")
					}
					return
				}
			}
		})
	}
	if got, want := (&UnknownFrameTooLargeError{Type: 0x30, Len: 65569}).Error(), "unknown frame type 48 too large: 65569 bytes"; got != want {
		t.Errorf("error text %q; want %q", got, want)
	}
}
