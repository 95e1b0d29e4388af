package derphttp

import "bytes"

// headComplete reports whether b holds the end of an HTTP request header:
// an empty line, ended by CRLF or, as net/http also accepts, by a bare LF.
func headComplete(b []byte) bool {
	return bytes.Contains(b, []byte("\n\r\n")) || bytes.Contains(b, []byte("\n\n"))
}

// plausibleHead reports whether b could be the start of an HTTP/1 request
// header: no control bytes but tab, CR and LF, and a first line, once
// complete, that names an HTTP version. Anything else is handed to
// net/http at once, which refuses it, rather than waiting for an end of
// header that will never come.
func plausibleHead(b []byte) bool {
	for _, c := range b {
		if (c < 0x20 && c != '\t' && c != '\r' && c != '\n') || c == 0x7f {
			return false
		}
	}
	line, _, found := bytes.Cut(b, []byte("\n"))
	return !found || bytes.Contains(line, []byte(" HTTP/"))
}
