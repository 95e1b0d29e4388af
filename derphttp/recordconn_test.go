package derphttp

import (
	"bytes"
	"io"
	"net"
	"testing"
)

// chunkConn serves its data in reads of at most max bytes, as a socket
// delivering segments would.
type chunkConn struct {
	net.Conn
	data []byte
	max  int
}

func (c *chunkConn) Read(p []byte) (int, error) {
	if len(c.data) == 0 {
		return 0, io.EOF
	}
	n := copy(p[:min(len(p), c.max)], c.data)
	c.data = c.data[n:]
	return n, nil
}

// record returns a TLS record of type typ with a body of n bytes.
func record(typ byte, n int) []byte {
	r := []byte{typ, 3, 3, byte(n >> 8), byte(n)}
	return append(r, bytes.Repeat([]byte{typ}, n)...)
}

// checkRecordReads reads everything through a recordConn over data with
// buffers of size buf and checks that the bytes come through unchanged
// and that no read crosses the end of a record.
func checkRecordReads(t testing.TB, data []byte, chunk, buf int) {
	rc := &recordConn{Conn: &chunkConn{data: data, max: chunk}}
	var got []byte
	// Offsets at which records end, from the stream's own headers.
	ends := map[int]bool{}
	for off := 0; off+recordHeaderLen <= len(data); {
		off += recordHeaderLen
		ends[off] = true // a header ends a read too
		off += int(data[off-2])<<8 | int(data[off-1])
		ends[off] = true
	}
	p := make([]byte, buf)
	for range 4 * (len(data) + 1) {
		n, err := rc.Read(p)
		start := len(got)
		got = append(got, p[:n]...)
		for i := start + 1; i < len(got); i++ {
			if ends[i] {
				t.Fatalf("a read of %d bytes from offset %d crosses the record boundary at %d", n, start, i)
			}
		}
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	if !bytes.Equal(got, data) {
		t.Fatalf("read %d bytes, want the %d written, unchanged", len(got), len(data))
	}
}

func TestRecordConnStopsAtRecordEnds(t *testing.T) {
	stream := append(append(append(record(22, 300), record(20, 1)...), record(23, 0)...), record(23, 4000)...)
	for _, tc := range []struct {
		name       string
		chunk, buf int
	}{
		{"whole stream available, big buffer", len(stream), 1 << 16},
		{"one byte at a time", 1, 1 << 16},
		{"small buffer", len(stream), 3},
		{"odd segments", 7, 513},
	} {
		t.Run(tc.name, func(t *testing.T) {
			checkRecordReads(t, stream, tc.chunk, tc.buf)
		})
	}
}

// TestRecordConnDone checks that once done is set reads are no longer cut
// at record ends.
func TestRecordConnDone(t *testing.T) {
	stream := append(record(23, 10), record(23, 10)...)
	rc := &recordConn{Conn: &chunkConn{data: stream, max: len(stream)}, done: true}
	n, err := rc.Read(make([]byte, 100))
	if err != nil || n != len(stream) {
		t.Fatalf("Read = %d, %v; want %d bytes at once", n, err, len(stream))
	}
}

// FuzzRecordConn feeds arbitrary streams, however cut into segments and
// read with whatever buffer size: the bytes come through unchanged and no
// read crosses a record's end.
func FuzzRecordConn(f *testing.F) {
	f.Add(record(22, 300), uint8(255), uint16(1024))
	f.Add(append(record(22, 5), record(23, 2)...), uint8(1), uint16(1))
	f.Add([]byte{22, 3, 3}, uint8(2), uint16(4))
	f.Fuzz(func(t *testing.T, data []byte, chunk uint8, buf uint16) {
		checkRecordReads(t, data, int(chunk)+1, int(buf)+1)
	})
}
