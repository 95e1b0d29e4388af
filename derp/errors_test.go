package derp

import (
	"errors"
	"fmt"
	"testing"
)

func TestErrorMessages(t *testing.T) {
	tests := []struct {
		err  error
		want string
	}{
		{&FrameTooLargeError{Type: FrameSendPacket, Len: 70000, Max: 65568}, "derp: SendPacket frame of 70000 bytes exceeds limit of 65568"},
		{&FrameTooLargeError{Type: 0x0c, Len: 2, Max: 1}, "derp: FrameType(0x0c) frame of 2 bytes exceeds limit of 1"},
		{malformed(FramePeerGone, 3, "shorter than a key"), "derp: malformed PeerGone frame (3 bytes): shorter than a key"},
		{&RejectedError{Reason: "not allowed"}, "client nodekey:0000000000000000000000000000000000000000000000000000000000000000 rejected: not allowed"},
		{ErrPacketTooLarge, "derp: packet too big"},
		{ErrInsufficientPermissions, "derp: insufficient permissions"},
	}
	for _, tc := range tests {
		if got := tc.err.Error(); got != tc.want {
			t.Errorf("Error() = %q; want %q", got, tc.want)
		}
	}
}

func TestErrorsBranchable(t *testing.T) {
	wrapped := fmt.Errorf("derp: reading client info: %w", malformed(FrameClientInfo, 10, "short client info"))
	var me *MalformedFrameError
	if !errors.As(wrapped, &me) || me.Type != FrameClientInfo || me.Len != 10 {
		t.Errorf("errors.As(wrapped malformed) = %+v", me)
	}
	var re *RejectedError
	if !errors.As(fmt.Errorf("x: %w", &RejectedError{Reason: "r"}), &re) || re.Reason != "r" {
		t.Errorf("errors.As(wrapped rejected) = %+v", re)
	}
	sentinels := []error{ErrPacketTooLarge, ErrInsufficientPermissions, ErrBadMagic, ErrUnexpectedFrame,
		ErrCannotOpenBox, ErrZeroKey, ErrServerClosed, ErrClientClosed}
	for i, a := range sentinels {
		if !errors.Is(fmt.Errorf("ctx: %w", a), a) {
			t.Errorf("errors.Is(wrapped %v) = false", a)
		}
		for j, b := range sentinels {
			if i != j && (errors.Is(a, b) || a.Error() == b.Error()) {
				t.Errorf("sentinels %q and %q are not distinct", a, b)
			}
		}
	}
}
