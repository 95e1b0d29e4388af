// Package certs provides derper's TLS certificates: from an ACME CA
// (Let's Encrypt by default) through autocert, or from files on disk.
// derper wraps the resulting GetCertificate with
// derphttp.GetCertificateWithMetaCert so every chain carries the DERP meta
// certificate.
package certs
