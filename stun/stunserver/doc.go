// Package stunserver answers STUN binding requests over UDP, telling each
// client the address and port its datagram came from. It is the STUN half
// of a DERP server (cmd/derper -stun).
//
// A Server answers only valid binding requests (see stun.ParseBindingRequest)
// and silently drops everything else: no error reply, no logging per
// datagram, no rate limiting. It counts what it sees; Metrics returns the
// counts and ExpVar presents them under the reference implementation's
// metric names.
package stunserver
