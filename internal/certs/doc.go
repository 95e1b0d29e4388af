// Package certs provides derper's TLS certificates: from an ACME CA
// (Let's Encrypt by default) through autocert, or from files on disk.
// Either way, GetCertificate results can carry the DERP meta certificate
// appended to the chain, which lets clients learn the server's DERP key
// during the TLS handshake.
package certs
