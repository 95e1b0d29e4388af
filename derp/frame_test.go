package derp

import (
	"bufio"
	"bytes"
	"encoding/hex"
	"errors"
	"io"
	"strings"
	"testing"
	"testing/iotest"
	"time"
)

// unhex decodes a hex string written with any spacing, for golden bytes.
func unhex(tb testing.TB, s string) []byte {
	tb.Helper()
	b, err := hex.DecodeString(strings.Join(strings.Fields(s), ""))
	if err != nil {
		tb.Fatalf("bad golden hex %q: %v", s, err)
	}
	return b
}

func readerOf(b []byte) *bufio.Reader { return bufio.NewReader(bytes.NewReader(b)) }

func TestConstants(t *testing.T) {
	if got, want := []byte(Magic), unhex(t, "44 45 52 50 f0 9f 94 91"); !bytes.Equal(got, want) {
		t.Errorf("Magic = %x; want %x", got, want)
	}
	for _, c := range []struct {
		name      string
		got, want int64
	}{
		{"ProtocolVersion", ProtocolVersion, 2},
		{"MaxPacketSize", MaxPacketSize, 65536},
		{"KeepAlive", int64(KeepAlive), int64(60 * time.Second)},
		{"KeyLen", KeyLen, 32},
		{"NonceLen", NonceLen, 24},
		{"FrameHeaderLen", FrameHeaderLen, 5},
		{"maxFrameSize", maxFrameSize, 10 << 20},
		{"maxInfoLen", maxInfoLen, 1 << 20},
		{"maxClientInfoLen", maxClientInfoLen, 262144},
		{"maxServerKeyLen", maxServerKeyLen, 1024},
		{"maxClientFrameLen", maxClientFrameLen, 1048576},
		{"maxPingLen", maxPingLen, 1000},
	} {
		if c.got != c.want {
			t.Errorf("%s = %d; want %d", c.name, c.got, c.want)
		}
	}
}

func TestFrameTypes(t *testing.T) {
	tests := []struct {
		t    FrameType
		b    byte
		name string
	}{
		{FrameServerKey, 0x01, "ServerKey"},
		{FrameClientInfo, 0x02, "ClientInfo"},
		{FrameServerInfo, 0x03, "ServerInfo"},
		{FrameSendPacket, 0x04, "SendPacket"},
		{FrameRecvPacket, 0x05, "RecvPacket"},
		{FrameKeepAlive, 0x06, "KeepAlive"},
		{FrameNotePreferred, 0x07, "NotePreferred"},
		{FramePeerGone, 0x08, "PeerGone"},
		{FramePeerPresent, 0x09, "PeerPresent"},
		{FrameForwardPacket, 0x0a, "ForwardPacket"},
		{FrameWatchConns, 0x10, "WatchConns"},
		{FrameClosePeer, 0x11, "ClosePeer"},
		{FramePing, 0x12, "Ping"},
		{FramePong, 0x13, "Pong"},
		{FrameHealth, 0x14, "Health"},
		{FrameRestarting, 0x15, "Restarting"},
		{0x00, 0x00, "FrameType(0x00)"},
		{0x0b, 0x0b, "FrameType(0x0b)"},
		{0x0f, 0x0f, "FrameType(0x0f)"},
		{0x16, 0x16, "FrameType(0x16)"},
		{0xff, 0xff, "FrameType(0xff)"},
	}
	for _, tc := range tests {
		if byte(tc.t) != tc.b {
			t.Errorf("%s = 0x%02x; want 0x%02x", tc.name, byte(tc.t), tc.b)
		}
		if got := tc.t.String(); got != tc.name {
			t.Errorf("FrameType(0x%02x).String() = %q; want %q", tc.b, got, tc.name)
		}
	}
}

func TestWriteFrameGolden(t *testing.T) {
	tests := []struct {
		name  string
		write func(bw *bufio.Writer) error
		want  string
	}{
		{"header", func(bw *bufio.Writer) error { return WriteFrameHeader(bw, FrameSendPacket, 0x000a0b0c) }, "04 000a0b0c"},
		{"header max", func(bw *bufio.Writer) error { return WriteFrameHeader(bw, FrameRecvPacket, maxFrameSize) }, "05 00a00000"},
		{"keepalive", func(bw *bufio.Writer) error { return WriteFrame(bw, FrameKeepAlive) }, "06 00000000"},
		{"empty parts", func(bw *bufio.Writer) error { return WriteFrame(bw, FrameWatchConns, nil, []byte{}) }, "10 00000000"},
		{"note preferred", func(bw *bufio.Writer) error { return WriteFrame(bw, FrameNotePreferred, []byte{1}) }, "07 00000001 01"},
		{"ping in parts", func(bw *bufio.Writer) error {
			return WriteFrame(bw, FramePing, []byte{1, 2, 3}, nil, []byte{4, 5, 6, 7, 8})
		}, "12 00000008 0102030405060708"},
		{"health", func(bw *bufio.Writer) error { return WriteFrame(bw, FrameHealth, []byte("oops")) }, "14 00000004 6f6f7073"},
	}
	for _, tc := range tests {
		var out bytes.Buffer
		bw := bufio.NewWriter(&out)
		if err := tc.write(bw); err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		bw.Flush()
		if want := unhex(t, tc.want); !bytes.Equal(out.Bytes(), want) {
			t.Errorf("%s: wrote %x; want %x", tc.name, out.Bytes(), want)
		}
	}
}

func TestWriteFrameTooLarge(t *testing.T) {
	var out bytes.Buffer
	bw := bufio.NewWriter(&out)
	var fe *FrameTooLargeError
	err := WriteFrameHeader(bw, FrameSendPacket, maxFrameSize+1)
	if !errors.As(err, &fe) || *fe != (FrameTooLargeError{Type: FrameSendPacket, Len: maxFrameSize + 1, Max: maxFrameSize}) {
		t.Errorf("WriteFrameHeader(maxFrameSize+1) = %v; want FrameTooLargeError", err)
	}
	mib := make([]byte, 1<<20)
	parts := make([][]byte, 11) // 11 MiB in total without allocating it
	for i := range parts {
		parts[i] = mib
	}
	err = WriteFrame(bw, FrameRecvPacket, parts...)
	if !errors.As(err, &fe) || *fe != (FrameTooLargeError{Type: FrameRecvPacket, Len: 11 << 20, Max: maxFrameSize}) {
		t.Errorf("WriteFrame(11 MiB) = %v; want FrameTooLargeError", err)
	}
	if bw.Buffered() != 0 || out.Len() != 0 {
		t.Errorf("a refused frame wrote %d bytes", bw.Buffered()+out.Len())
	}
	// Exactly the limit is allowed.
	if err := WriteFrame(bufio.NewWriter(io.Discard), FrameRecvPacket, parts[:10]...); err != nil {
		t.Errorf("WriteFrame(10 MiB) = %v; want nil", err)
	}
}

type failWriter struct{ err error }

func (w failWriter) Write([]byte) (int, error) { return 0, w.err }

func TestWriteFrameWriterError(t *testing.T) {
	boom := errors.New("boom")
	bw := bufio.NewWriterSize(failWriter{boom}, 16)
	if err := WriteFrame(bw, FrameSendPacket, make([]byte, 100)); !errors.Is(err, boom) {
		t.Errorf("WriteFrame over a failing writer = %v; want boom", err)
	}
	// bufio errors are sticky: the header fails too now.
	if err := WriteFrameHeader(bw, FrameKeepAlive, 0); !errors.Is(err, boom) {
		t.Errorf("WriteFrameHeader after failure = %v; want boom", err)
	}
	if err := WriteFrame(bw, FrameKeepAlive); !errors.Is(err, boom) {
		t.Errorf("WriteFrame after failure = %v; want boom", err)
	}
	// A buffer smaller than a header must still work.
	var out bytes.Buffer
	tiny := bufio.NewWriterSize(&out, 1)
	if err := WriteFrame(tiny, FramePing, []byte("12345678")); err != nil {
		t.Fatal(err)
	}
	tiny.Flush()
	if want := unhex(t, "12 00000008 3132333435363738"); !bytes.Equal(out.Bytes(), want) {
		t.Errorf("tiny buffer wrote %x; want %x", out.Bytes(), want)
	}
}

func TestReadFrameHeader(t *testing.T) {
	br := readerOf(unhex(t, "04 00010203 ff ffffffff"))
	ft, n, err := ReadFrameHeader(br)
	if ft != FrameSendPacket || n != 0x010203 || err != nil {
		t.Errorf("ReadFrameHeader = %v, %d, %v; want SendPacket, 66051, nil", ft, n, err)
	}
	ft, n, err = ReadFrameHeader(br)
	if ft != 0xff || n != 0xffffffff || err != nil {
		t.Errorf("ReadFrameHeader = %v, %d, %v; want 0xff, 4294967295, nil", ft, n, err)
	}
	if _, _, err := ReadFrameHeader(br); err != io.EOF {
		t.Errorf("ReadFrameHeader at end = %v; want io.EOF", err)
	}
	for i := 1; i < FrameHeaderLen; i++ {
		if _, _, err := ReadFrameHeader(readerOf(make([]byte, i))); err != io.ErrUnexpectedEOF {
			t.Errorf("ReadFrameHeader(%d bytes) = %v; want io.ErrUnexpectedEOF", i, err)
		}
	}
	boom := errors.New("boom")
	if _, _, err := ReadFrameHeader(bufio.NewReader(iotest.ErrReader(boom))); !errors.Is(err, boom) {
		t.Errorf("ReadFrameHeader over failing reader = %v; want boom", err)
	}
	// One byte at a time still yields whole headers.
	br = bufio.NewReader(iotest.OneByteReader(bytes.NewReader(unhex(t, "12 00000000"))))
	if ft, n, err := ReadFrameHeader(br); ft != FramePing || n != 0 || err != nil {
		t.Errorf("ReadFrameHeader(one byte reader) = %v, %d, %v; want Ping, 0, nil", ft, n, err)
	}
}

func TestReadFrame(t *testing.T) {
	stream := unhex(t, "14 00000004 6f6f7073  06 00000000  12 00000008 0102030405060708")
	br := readerOf(stream)
	buf := make([]byte, 0, 16)
	want := []struct {
		t FrameType
		p string
	}{{FrameHealth, "oops"}, {FrameKeepAlive, ""}, {FramePing, "\x01\x02\x03\x04\x05\x06\x07\x08"}}
	for _, w := range want {
		ft, p, err := ReadFrame(br, 8, buf)
		if err != nil || ft != w.t || string(p) != w.p {
			t.Fatalf("ReadFrame = %v, %q, %v; want %v, %q, nil", ft, p, err, w.t, w.p)
		}
		if len(p) > 0 && &p[0] != &buf[:1][0] {
			t.Errorf("ReadFrame did not read into the provided buffer")
		}
	}
	if _, _, err := ReadFrame(br, 8, buf); err != io.EOF {
		t.Errorf("ReadFrame at end = %v; want io.EOF", err)
	}
}

func TestReadFrameGrowsBuffer(t *testing.T) {
	for _, buf := range [][]byte{nil, make([]byte, 3), make([]byte, 0, 9)} {
		ft, p, err := ReadFrame(readerOf(unhex(t, "05 0000000a 00010203040506070809")), 100, buf)
		if err != nil || ft != FrameRecvPacket || !bytes.Equal(p, unhex(t, "00010203040506070809")) {
			t.Errorf("ReadFrame(cap %d) = %v, %x, %v", cap(buf), ft, p, err)
		}
	}
}

func TestReadFrameTooLarge(t *testing.T) {
	br := readerOf(unhex(t, "04 00000009 000102030405060708  06 00000000"))
	ft, p, err := ReadFrame(br, 8, nil)
	var fe *FrameTooLargeError
	if !errors.As(err, &fe) || *fe != (FrameTooLargeError{Type: FrameSendPacket, Len: 9, Max: 8}) || p != nil || ft != FrameSendPacket {
		t.Fatalf("ReadFrame(9 > 8) = %v, %x, %v; want SendPacket, nil, FrameTooLargeError{9, 8}", ft, p, err)
	}
	// Only the header was consumed.
	if br.Buffered() != 9+5 {
		t.Errorf("after FrameTooLargeError %d bytes remain; want 14", br.Buffered())
	}
	if _, _, err := ReadFrame(readerOf(unhex(t, "04 ffffffff")), 0, nil); !errors.As(err, &fe) || fe.Len != 0xffffffff || fe.Max != 0 {
		t.Errorf("ReadFrame(4 GiB, max 0) = %v; want FrameTooLargeError", err)
	}
	// maxSize itself is allowed.
	if _, p, err := ReadFrame(readerOf(unhex(t, "04 00000002 abcd")), 2, nil); err != nil || len(p) != 2 {
		t.Errorf("ReadFrame(2, max 2) = %x, %v; want 2 bytes, nil", p, err)
	}
}

func TestReadFrameTruncated(t *testing.T) {
	full := unhex(t, "04 00000004 01020304")
	for i := 1; i < len(full); i++ {
		_, _, err := ReadFrame(readerOf(full[:i]), 100, nil)
		if !errors.Is(err, io.ErrUnexpectedEOF) {
			t.Errorf("ReadFrame(%d of %d bytes) = %v; want io.ErrUnexpectedEOF", i, len(full), err)
		}
		if i >= FrameHeaderLen && (err == nil || !strings.Contains(err.Error(), "derp: reading SendPacket payload")) {
			t.Errorf("ReadFrame(%d bytes) error %q does not say what was read", i, err)
		}
	}
	boom := errors.New("boom")
	r := io.MultiReader(bytes.NewReader(full[:7]), iotest.ErrReader(boom))
	if _, _, err := ReadFrame(bufio.NewReader(r), 100, nil); !errors.Is(err, boom) {
		t.Errorf("ReadFrame over failing reader = %v; want boom", err)
	}
}

func TestDiscardPayload(t *testing.T) {
	big := 3*4096 + 17 // longer than bufio's default buffer
	var stream []byte
	stream = append(stream, unhex(t, "ff 00003011")...)
	stream = append(stream, make([]byte, big)...)
	stream = append(stream, unhex(t, "13 00000000")...)
	br := bufio.NewReader(iotest.HalfReader(bytes.NewReader(stream)))
	ft, n, err := ReadFrameHeader(br)
	if err != nil || ft != 0xff || int(n) != big {
		t.Fatalf("ReadFrameHeader = %v, %d, %v", ft, n, err)
	}
	if err := discardPayload(br, n); err != nil {
		t.Fatalf("discardPayload(%d) = %v", n, err)
	}
	if err := discardPayload(br, 0); err != nil {
		t.Fatalf("discardPayload(0) = %v", err)
	}
	if ft, _, err := ReadFrame(br, 0, nil); ft != FramePong || err != nil {
		t.Errorf("frame after discard = %v, %v; want Pong, nil", ft, err)
	}
	if err := discardPayload(readerOf([]byte{1, 2}), 3); err != io.ErrUnexpectedEOF {
		t.Errorf("discardPayload past end = %v; want io.ErrUnexpectedEOF", err)
	}
	if err := discardPayload(readerOf(nil), 0xffffffff); err != io.ErrUnexpectedEOF {
		t.Errorf("discardPayload(4 GiB) of nothing = %v; want io.ErrUnexpectedEOF", err)
	}
}

// loopReader yields the same bytes forever without allocating.
type loopReader struct {
	data []byte
	off  int
}

func (r *loopReader) Read(p []byte) (int, error) {
	n := 0
	for n < len(p) {
		c := copy(p[n:], r.data[r.off:])
		n += c
		r.off = (r.off + c) % len(r.data)
	}
	return n, nil
}

func TestFrameCodecAllocs(t *testing.T) {
	if testing.Short() {
		t.Skip("allocation counts are checked in full runs")
	}
	payload := bytes.Repeat([]byte{0x5a}, 1280)
	dst := bytes.Repeat([]byte{0x11}, KeyLen)
	var frame bytes.Buffer
	fw := bufio.NewWriter(&frame)
	WriteFrame(fw, FrameSendPacket, dst, payload)
	fw.Flush()

	br := bufio.NewReaderSize(&loopReader{data: frame.Bytes()}, 4096)
	bw := bufio.NewWriterSize(io.Discard, 4096)
	buf := make([]byte, 0, MaxPacketSize+KeyLen)

	read := testing.AllocsPerRun(200, func() {
		ft, p, err := ReadFrame(br, MaxPacketSize+KeyLen, buf)
		if err != nil || ft != FrameSendPacket || len(p) != KeyLen+len(payload) {
			t.Fatalf("ReadFrame = %v, %d bytes, %v", ft, len(p), err)
		}
	})
	header := testing.AllocsPerRun(200, func() {
		ft, n, err := ReadFrameHeader(br)
		if err != nil || ft != FrameSendPacket {
			t.Fatalf("ReadFrameHeader = %v, %v", ft, err)
		}
		if _, err := io.ReadFull(br, buf[:n]); err != nil {
			t.Fatal(err)
		}
	})
	write := testing.AllocsPerRun(200, func() {
		if err := WriteFrame(bw, FrameRecvPacket, dst, payload); err != nil {
			t.Fatal(err)
		}
		if err := WriteFrameHeader(bw, FrameKeepAlive, 0); err != nil {
			t.Fatal(err)
		}
	})
	if read != 0 || header != 0 || write != 0 {
		t.Errorf("allocations per frame: ReadFrame %v, ReadFrameHeader %v, WriteFrame %v; want 0", read, header, write)
	}
}
