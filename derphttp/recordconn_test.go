package derphttp

import (
	"bytes"
	"errors"
	"io"
	"net"
	"testing"
)

// chunkConn serves its data in reads of at most max bytes, as a socket
// delivering segments would.
type chunkConn struct {
	net.Conn
	data  []byte
	max   int
	reads int // Read calls that returned data
}

func (c *chunkConn) Read(p []byte) (int, error) {
	if len(c.data) == 0 {
		return 0, io.EOF
	}
	n := copy(p[:min(len(p), c.max)], c.data)
	c.data = c.data[n:]
	c.reads++
	return n, nil
}

// record returns a TLS record of type typ with a body of n bytes.
func record(typ byte, n int) []byte {
	r := []byte{typ, 3, 3, byte(n >> 8), byte(n)}
	return append(r, bytes.Repeat([]byte{typ}, n)...)
}

// checkRecordReads reads everything through a recordConn over data with
// buffers of size buf and checks that the bytes come through unchanged
// and that no read crosses the end of a record. If doneAt is positive,
// done is set once that many bytes came through, and the rest must come
// through unchanged too.
func checkRecordReads(t testing.TB, data []byte, chunk, buf, doneAt int) {
	rc := &recordConn{Conn: &chunkConn{data: data, max: chunk}}
	var got []byte
	// Offsets at which records end, from the stream's own headers.
	ends := map[int]bool{}
	for off := 0; off+recordHeaderLen <= len(data); {
		off += recordHeaderLen
		if data[off-2] == 0 && data[off-1] == 0 {
			ends[off] = true // an empty record ends with its header
		}
		off += int(data[off-2])<<8 | int(data[off-1])
		ends[off] = true
	}
	p := make([]byte, buf)
	for range 4 * (len(data) + 1) {
		n, err := rc.Read(p)
		start := len(got)
		got = append(got, p[:n]...)
		if doneAt > 0 && start >= doneAt {
			// done was set: reads may cross record ends now.
		} else if doneAt > 0 && len(got) >= doneAt {
			rc.done = true
		}
		for i := start + 1; i < len(got) && !(doneAt > 0 && start >= doneAt); i++ {
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
			checkRecordReads(t, stream, tc.chunk, tc.buf, 0)
			checkRecordReads(t, stream, tc.chunk, tc.buf, 306) // done after the first record
		})
	}
}

// TestRecordConnReadsOnce checks that records that arrived together cost
// one read of the connection, not one or two each: what a read brings
// past the current record is served from memory.
func TestRecordConnReadsOnce(t *testing.T) {
	stream := append(append(record(20, 1), record(22, 53)...), record(23, 200)...)
	cc := &chunkConn{data: stream, max: len(stream)}
	rc := &recordConn{Conn: cc}
	p := make([]byte, 1<<10)
	for i, want := range []int{6, 58} {
		n, err := rc.Read(p)
		if err != nil || n != want {
			t.Fatalf("read %d = %d, %v; want the %d bytes of record %d", i, n, err, want, i)
		}
	}
	if !rc.pending() {
		t.Fatal("pending() = false with the third record read from the connection but not returned")
	}
	rc.done = true // the handshake ended: the application record follows
	n, err := rc.Read(p)
	if err != nil || !bytes.Equal(p[:n], record(23, 200)) {
		t.Fatalf("after done: read %d bytes, %v; want the application record", n, err)
	}
	if rc.pending() {
		t.Fatal("pending() = true with everything returned")
	}
	if cc.reads != 1 {
		t.Fatalf("%d reads of the connection, want 1", cc.reads)
	}
	if n, err := rc.Read(p); n != 0 || err != io.EOF {
		t.Fatalf("at the end: %d, %v; want 0, EOF", n, err)
	}
}

// errAfterConn returns all its data and an error in the same Read.
type errAfterConn struct {
	net.Conn
	data []byte
	err  error
}

func (c *errAfterConn) Read(p []byte) (int, error) {
	n := copy(p, c.data)
	c.data = c.data[n:]
	if len(c.data) == 0 {
		return n, c.err
	}
	return n, nil
}

// TestRecordConnKeepsErrorForLater checks that an error that came with
// bytes past the current record is returned once those bytes have been.
func TestRecordConnKeepsErrorForLater(t *testing.T) {
	stream := append(record(22, 3), record(23, 4)...)
	boom := errors.New("boom")
	rc := &recordConn{Conn: &errAfterConn{data: stream, err: boom}}
	p := make([]byte, 100)
	var got []byte
	for range 5 {
		n, err := rc.Read(p)
		got = append(got, p[:n]...)
		if err != nil {
			if err != boom || !bytes.Equal(got, stream) {
				t.Fatalf("got %d bytes then %v; want all %d bytes then boom", len(got), err, len(stream))
			}
			return
		}
	}
	t.Fatal("the error never came")
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
		checkRecordReads(t, data, int(chunk)+1, int(buf)+1, 0)
		checkRecordReads(t, data, int(chunk)+1, int(buf)+1, int(buf)%(len(data)+1))
	})
}
