package main

import (
	"bytes"
	"io"
	"log"
)

// noisyErrorSuffixes end HTTP server error lines that only say a client
// went away or spoke the wrong protocol; at a busy relay they drown
// everything else.
var noisyErrorSuffixes = [][]byte{
	[]byte(": EOF"),
	[]byte(": i/o timeout"),
	[]byte(": read: connection reset by peer"),
	[]byte(": remote error: tls: bad certificate"),
	[]byte(": tls: first record does not look like a TLS handshake"),
}

// filterWriter passes log lines to w unless they end in a noisy suffix.
type filterWriter struct{ w io.Writer }

func (f filterWriter) Write(p []byte) (int, error) {
	line := bytes.TrimRight(p, "\n")
	for _, s := range noisyErrorSuffixes {
		if bytes.HasSuffix(line, s) {
			return len(p), nil
		}
	}
	return f.w.Write(p)
}

// httpErrorLog returns the ErrorLog of derper's HTTP servers; w is a
// logWriter in derper.
func httpErrorLog(w io.Writer) *log.Logger {
	return log.New(filterWriter{w}, "", 0) // the log handler adds the time
}
