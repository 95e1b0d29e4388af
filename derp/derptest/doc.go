// Package derptest provides helpers for testing DERP code: an in-memory
// buffered connection pair that behaves like a socket, with deadlines.
package derptest
