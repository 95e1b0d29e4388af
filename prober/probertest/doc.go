// Package probertest builds DERP deployments in a test process for
// probing: a certificate authority, DERP nodes served over HTTPS on
// loopback with a STUN server each, meshes between them, and DERP map
// files describing them.
//
// Everything it starts is stopped by the test's cleanup.
package probertest
