package derp

import (
	"context"
	"encoding/json"
	"errors"
	"io"
)

// handshakeDoneKey is the context key of WithHandshakeDone.
type handshakeDoneKey struct{}

// WithHandshakeDone returns a copy of ctx that makes Accept call f once
// the client on that connection has completed the DERP handshake and been
// registered. f is called at most once, from Accept's goroutine. A front
// end that bounds connections still in their handshake (see derphttp's
// LimitListener) uses it to learn when one stops being pending.
func WithHandshakeDone(ctx context.Context, f func()) context.Context {
	return context.WithValue(ctx, handshakeDoneKey{}, f)
}

// noteHandshakeDone calls the function set by WithHandshakeDone, if any.
func noteHandshakeDone(ctx context.Context) {
	if f, ok := ctx.Value(handshakeDoneKey{}).(func()); ok && f != nil {
		f()
	}
}

// isProtocolError reports whether err, which ended a connection's read
// loop, is the client's fault: a malformed, oversized, truncated or
// forbidden frame, rather than the connection going away.
func isProtocolError(err error) bool {
	var tooLarge *FrameTooLargeError
	var bad *MalformedFrameError
	return errors.As(err, &tooLarge) || errors.As(err, &bad) ||
		errors.Is(err, ErrInsufficientPermissions) || errors.Is(err, io.ErrUnexpectedEOF)
}

// isHandshakeProtocolError reports whether a failed handshake was the
// client's fault (a wrong or malformed frame, a box that does not open,
// bad JSON) rather than the connection going away or the admission checks
// refusing the key.
func isHandshakeProtocolError(err error) bool {
	var syntax *json.SyntaxError
	var typ *json.UnmarshalTypeError
	return isProtocolError(err) || errors.Is(err, ErrUnexpectedFrame) || errors.Is(err, ErrCannotOpenBox) ||
		errors.Is(err, ErrZeroKey) || errors.As(err, &syntax) || errors.As(err, &typ)
}
