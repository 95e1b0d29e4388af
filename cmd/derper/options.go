package main

import (
	"errors"

	"github.com/openderp/openderp/internal/debugweb"
)

// checkedOptions holds what checkOptions derived from the flags and the
// environment.
type checkedOptions struct {
	home     homeConfig
	mesh     []meshPeer
	debugEnv debugweb.Env

	tlsMinVersion uint16 // from -tls-min-version
}

// checkOptions validates every setting that can be checked before
// anything starts, so that a bad value stops derper at once rather than
// on first use.
func checkOptions(o *options) (*checkedOptions, error) {
	var c checkedOptions
	var err error
	if o.tcpWriteTimeout < 0 {
		// The reference takes a negative value and then fails every
		// write. See docs/compat.md#derper-write-timeout-flag.
		return nil, errors.New("derper: -tcp-write-timeout must not be negative (0 disables it)")
	}
	if err := o.stunLimit.check(); err != nil {
		return nil, err
	}
	if c.tlsMinVersion, err = parseTLSMinVersion(o.tlsMinVersion); err != nil {
		return nil, err
	}
	if c.home, err = parseHome(o.home); err != nil {
		return nil, err
	}
	if c.mesh, err = parseMeshWith(o.meshWith); err != nil {
		return nil, errors.New("startMesh: " + err.Error())
	}
	if c.debugEnv, err = debugweb.EnvFromOS(); err != nil {
		return nil, err
	}
	return &c, nil
}
