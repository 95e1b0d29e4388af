package derp

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"io"
	"math"
	"net/netip"
	"testing"
	"time"

	"github.com/openderp/openderp/key"
)

// fuzzMaxFrame caps the limit FuzzReadFrame passes to ReadFrame: ReadFrame
// allocates the announced length before reading it, and the fuzzer should
// not spend its time on 4 GiB allocations.
const fuzzMaxFrame = 1 << 17

// encodeFrame returns the bytes of one frame.
func encodeFrame(tb testing.TB, t FrameType, parts ...[]byte) []byte {
	tb.Helper()
	var out bytes.Buffer
	bw := bufio.NewWriter(&out)
	if err := WriteFrame(bw, t, parts...); err != nil {
		tb.Fatal(err)
	}
	bw.Flush()
	return out.Bytes()
}

// fuzzKeys are fixed client and server keys, so that fuzz runs are
// reproducible.
func fuzzKeys() (client, server key.NodePrivate) {
	var c, s [32]byte
	for i := range c {
		c[i], s[i] = byte(i+1), byte(0xa0+i)
	}
	return key.NodePrivateFromRaw32(c), key.NodePrivateFromRaw32(s)
}

// validPayloads returns one valid payload of every codec.
func validPayloads(tb testing.TB) map[FrameType][]byte {
	a, b := goldenKeys(tb)
	client, server := fuzzKeys()
	js, _ := json.Marshal(clientInfo{Version: ProtocolVersion, CanAckPings: true})
	sealed, err := client.SealTo(server.Public(), js)
	if err != nil {
		tb.Fatal(err)
	}
	return map[FrameType][]byte{
		FrameServerKey:     appendServerKey(nil, a),
		FrameClientInfo:    appendClientInfo(nil, client.Public(), sealed),
		FrameServerInfo:    sealed,
		FrameSendPacket:    append(b.AppendTo(nil), "hello"...),
		FrameRecvPacket:    append(a.AppendTo(nil), "hello"...),
		FrameKeepAlive:     {},
		FrameNotePreferred: {1},
		FramePeerGone:      appendPeerGone(nil, a, PeerGoneReasonNotHere),
		FramePeerPresent:   appendPeerPresent(nil, a, netip.MustParseAddrPort("198.51.100.7:41641"), PeerPresentIsMeshPeer, "app"),
		FrameForwardPacket: append(b.AppendTo(a.AppendTo(nil)), "hello"...),
		FrameWatchConns:    {},
		FrameClosePeer:     b.AppendTo(nil),
		FramePing:          []byte("12345678"),
		FramePong:          []byte("87654321"),
		FrameHealth:        []byte("the server is sad"),
		FrameRestarting:    appendRestarting(nil, 2*time.Second, time.Minute),
	}
}

func FuzzReadFrame(f *testing.F) {
	var all []byte
	for t, p := range validPayloads(f) {
		fr := encodeFrame(f, t, p)
		all = append(all, fr...)
		f.Add(fr, uint32(len(p)), uint16(len(p)))
		f.Add(fr[:len(fr)-1], uint32(maxClientFrameLen), uint16(0))
	}
	f.Add(all, uint32(maxClientFrameLen), uint16(64))
	f.Add(all, uint32(8), uint16(8))
	f.Add([]byte{0x04, 0xff, 0xff, 0xff, 0xff, 0}, uint32(1000), uint16(0))
	f.Add([]byte{0x04, 0, 0}, uint32(0), uint16(0))

	f.Fuzz(func(t *testing.T, data []byte, maxSize uint32, bufCap uint16) {
		maxSize %= fuzzMaxFrame + 1
		r := bytes.NewReader(data)
		br := bufio.NewReaderSize(r, 16)
		buf := make([]byte, 0, bufCap)
		consumed := func() int { return len(data) - r.Len() - br.Buffered() }
		// Every frame consumes at least a header, so this loop ends.
		for frames := 0; ; frames++ {
			if frames > len(data)/FrameHeaderLen {
				t.Fatalf("read %d frames from %d bytes", frames, len(data))
			}
			before := consumed()
			ft, p, err := ReadFrame(br, maxSize, buf)
			var fe *FrameTooLargeError
			switch {
			case err == nil:
				if uint32(len(p)) > maxSize {
					t.Fatalf("ReadFrame returned %d bytes; limit %d", len(p), maxSize)
				}
				if len(p) > 0 && cap(buf) >= len(p) && &p[0] != &buf[:1][0] {
					t.Fatalf("ReadFrame did not use a buffer big enough for %d bytes", len(p))
				}
				// Writing the frame back reproduces the bytes consumed.
				got := encodeFrame(t, ft, p)
				if want := data[before:consumed()]; !bytes.Equal(got, want) {
					t.Fatalf("WriteFrame(ReadFrame(%x)) = %x", want, got)
				}
			case err == io.EOF:
				if before != len(data) {
					t.Fatalf("io.EOF with %d of %d bytes consumed", before, len(data))
				}
				return
			case errors.As(err, &fe):
				if fe.Max != maxSize || fe.Len <= maxSize || fe.Type != ft || consumed()-before != FrameHeaderLen {
					t.Fatalf("bad %v after consuming %d bytes", err, consumed()-before)
				}
				if hdr := data[before:]; FrameType(hdr[0]) != ft || binary.BigEndian.Uint32(hdr[1:]) != fe.Len {
					t.Fatalf("%v does not match header %x", err, hdr[:FrameHeaderLen])
				}
				// Skip it, as a server does with frames it does not want.
				if err := discardPayload(br, fe.Len); err != nil {
					if err != io.ErrUnexpectedEOF || uint32(len(data)-before-FrameHeaderLen) >= fe.Len {
						t.Fatalf("discardPayload(%d) with %d bytes left = %v", fe.Len, len(data)-before-FrameHeaderLen, err)
					}
					return
				}
			case errors.Is(err, io.ErrUnexpectedEOF):
				// A partial header stays buffered; either way the input
				// must have run out.
				if r.Len() != 0 {
					t.Fatalf("%v with %d bytes left unread", err, r.Len())
				}
				return
			default:
				t.Fatalf("ReadFrame: unexpected error %v", err)
			}
		}
	})
}

func FuzzClientInfo(f *testing.F) {
	client, server := fuzzKeys()
	f.Add(validPayloads(f)[FrameClientInfo])
	for _, ci := range []clientInfo{
		{Version: ProtocolVersion, CanAckPings: true},
		{MeshKey: "0123456789abcdef", Version: 2, IsProber: true},
		{},
	} {
		js, _ := json.Marshal(ci)
		f.Add(js)
	}
	f.Add([]byte(`{"meshKey":"\u00e9\ud800","version":-1,"canackpings":true,"ISPROBER":false,"extra":[1,{}]}`))
	f.Add(make([]byte, KeyLen+NonceLen))

	f.Fuzz(func(t *testing.T, data []byte) {
		// The frame layer: key, then sealed bytes.
		pub, sealed, err := parseClientInfo(data)
		if err != nil {
			var me *MalformedFrameError
			if !errors.As(err, &me) || len(data) >= KeyLen+NonceLen {
				t.Fatalf("parseClientInfo(%d bytes) = %v", len(data), err)
			}
		} else {
			again := appendClientInfo(nil, pub, sealed)
			if !bytes.Equal(again, data) {
				t.Fatalf("appendClientInfo(parseClientInfo(%x)) = %x", data, again)
			}
			pub2, sealed2, err := parseClientInfo(again)
			if err != nil || pub2 != pub || !bytes.Equal(sealed2, sealed) {
				t.Fatalf("parseClientInfo not stable on %x", again)
			}
			// Arbitrary bytes must not open (and must not panic trying).
			if _, ok := server.OpenFrom(pub, sealed); ok && pub != client.Public() {
				t.Fatalf("OpenFrom accepted a box from an unknown key")
			}
		}

		// The JSON layer: what decodes is sealed, framed, parsed, opened
		// and decoded again to the same value.
		var ci clientInfo
		if json.Unmarshal(data, &ci) != nil {
			return
		}
		js, err := json.Marshal(ci)
		if err != nil {
			t.Fatalf("json.Marshal(%+v): %v", ci, err)
		}
		sealed, err = client.SealTo(server.Public(), js)
		if err != nil {
			t.Fatal(err)
		}
		payload := appendClientInfo(nil, client.Public(), sealed)
		br := bufio.NewReader(bytes.NewReader(encodeFrame(t, FrameClientInfo, payload)))
		ft, p, err := ReadFrame(br, maxClientInfoLen, nil)
		if err != nil || ft != FrameClientInfo {
			t.Fatalf("ReadFrame(ClientInfo) = %v, %v", ft, err)
		}
		pub, sealed, err = parseClientInfo(p)
		if err != nil || pub != client.Public() {
			t.Fatalf("parseClientInfo = %v, %v", pub, err)
		}
		clear, ok := server.OpenFrom(pub, sealed)
		if !ok || !bytes.Equal(clear, js) {
			t.Fatalf("OpenFrom = %q, %v; want %q", clear, ok, js)
		}
		var ci2 clientInfo
		if err := json.Unmarshal(clear, &ci2); err != nil || ci2 != ci {
			t.Fatalf("json round trip: %+v, %v; want %+v", ci2, err, ci)
		}
	})
}

func FuzzPayloads(f *testing.F) {
	for _, p := range validPayloads(f) {
		f.Add(p)
	}
	f.Add(appendPeerPresent(nil, key.NodePublic{}, netip.AddrPort{}, 0, ""))
	f.Add(appendPeerPresent(nil, key.NodePublic{}, netip.MustParseAddrPort("[2001:db8::1]:443"), 7, "")[:50])
	f.Add(appendPeerPresent(nil, key.NodePublic{}, netip.MustParseAddrPort("[2001:db8::1]:443"), 0x0e, "x y"))
	f.Add(append([]byte(discoMagic), make([]byte, KeyLen+NonceLen)...))
	f.Add(make([]byte, 2*KeyLen+MaxPacketSize+1))

	f.Fuzz(func(t *testing.T, data []byte) {
		var me *MalformedFrameError
		// checkLen checks that err is nil exactly when min <= len(data) <=
		// max, and a *MalformedFrameError otherwise; it reports err == nil.
		checkLen := func(name string, err error, min, max int) bool {
			t.Helper()
			fits := min <= len(data) && len(data) <= max
			if err == nil {
				if !fits {
					t.Fatalf("parse %s accepted %d bytes; want %d to %d", name, len(data), min, max)
				}
				return true
			}
			if !errors.As(err, &me) || fits {
				t.Fatalf("parse %s (%d bytes) = %v", name, len(data), err)
			}
			return false
		}
		const noMax = math.MaxInt

		if k, err := parseServerKey(data); err == nil {
			if got := appendServerKey(nil, k); !bytes.Equal(got, data[:len(Magic)+KeyLen]) {
				t.Fatalf("appendServerKey(parseServerKey(%x)) = %x", data, got)
			}
		} else if !errors.Is(err, ErrBadMagic) {
			checkLen("server key", err, len(Magic)+KeyLen, noMax)
		}

		if dst, pkt, err := parseSendPacket(data); checkLen("send", err, KeyLen, KeyLen+MaxPacketSize) {
			if !bytes.Equal(append(dst.AppendTo(nil), pkt...), data) {
				t.Fatalf("parseSendPacket(%x) = %v, %x", data, dst, pkt)
			}
		}

		if src, pkt, err := parseRecvPacket(data); checkLen("recv", err, KeyLen, noMax) {
			if !bytes.Equal(append(src.AppendTo(nil), pkt...), data) {
				t.Fatalf("parseRecvPacket(%x) = %v, %x", data, src, pkt)
			}
		}

		if src, dst, pkt, err := parseForwardPacket(data); checkLen("forward", err, 2*KeyLen, 2*KeyLen+MaxPacketSize) {
			if !bytes.Equal(append(dst.AppendTo(src.AppendTo(nil)), pkt...), data) {
				t.Fatalf("parseForwardPacket(%x) = %v, %v, %x", data, src, dst, pkt)
			}
		}

		if m, err := parsePeerGone(data); checkLen("peer gone", err, KeyLen, noMax) {
			enc := appendPeerGone(nil, m.Peer, m.Reason)
			if len(data) > KeyLen && !bytes.Equal(enc, data[:KeyLen+1]) {
				t.Fatalf("appendPeerGone(parsePeerGone(%x)) = %x", data, enc)
			}
			if m2, err := parsePeerGone(enc); err != nil || m2 != m {
				t.Fatalf("parsePeerGone not stable: %+v then %+v, %v", m, m2, err)
			}
		}

		if m, err := parsePeerPresent(data); checkLen("peer present", err, KeyLen, noMax) {
			enc := appendPeerPresent(nil, m.Key, m.IPPort, m.Flags, m.AppName)
			if len(data) >= peerPresentLen && !bytes.Equal(enc[:peerPresentLen], data[:peerPresentLen]) {
				t.Fatalf("appendPeerPresent(parsePeerPresent(%x)) = %x", data, enc)
			}
			if !ValidAppName(m.AppName) {
				t.Fatalf("parsePeerPresent(%x) kept invalid app name %q", data, m.AppName)
			}
			if m.AppName != "" && !bytes.Equal(enc, data[:len(enc)]) {
				t.Fatalf("appendPeerPresent(parsePeerPresent(%x)) = %x with name", data, enc)
			}
			if m.IPPort.Addr().Is4In6() {
				t.Fatalf("parsePeerPresent left %v mapped", m.IPPort)
			}
			if m2, err := parsePeerPresent(enc); err != nil || m2 != m {
				t.Fatalf("parsePeerPresent not stable: %+v then %+v, %v", m, m2, err)
			}
		}

		for _, ft := range []FrameType{FramePing, FramePong} {
			if b, err := parsePing(ft, data); checkLen("ping", err, 8, noMax) {
				if !bytes.Equal(b[:], data[:8]) {
					t.Fatalf("parsePing(%x) = %x", data, b)
				}
			} else if me.Type != ft {
				t.Fatalf("parsePing(%v) error names %v", ft, me.Type)
			}
		}

		if m, err := parseRestarting(data); checkLen("restarting", err, 8, noMax) {
			enc := appendRestarting(nil, m.ReconnectIn, m.TryFor)
			if !bytes.Equal(enc, data[:8]) {
				t.Fatalf("appendRestarting(parseRestarting(%x)) = %x", data, enc)
			}
		}

		want := len(data) >= discoMinLen && bytes.HasPrefix(data, []byte(discoMagic))
		if got := looksLikeDisco(data); got != want {
			t.Fatalf("looksLikeDisco(%x) = %v; want %v", data, got, want)
		}
	})
}
