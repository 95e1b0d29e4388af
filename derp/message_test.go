package derp

import (
	"bytes"
	"encoding/json"
	"errors"
	"math"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/openderp/openderp/key"
)

// Golden keys: bytes 00…1f and e0…ff.
const (
	keyAHex = "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f"
	keyBHex = "e0e1e2e3e4e5e6e7e8e9eaebecedeeeff0f1f2f3f4f5f6f7f8f9fafbfcfdfeff"
)

func goldenKeys(tb testing.TB) (a, b key.NodePublic) {
	return key.NodePublicFromBytes(unhex(tb, keyAHex)), key.NodePublicFromBytes(unhex(tb, keyBHex))
}

// Every message type satisfies ReceivedMessage.
var _ = []ReceivedMessage{
	ReceivedPacket{}, &ReceivedPacket{}, PeerGoneMessage{}, PeerPresentMessage{},
	ServerInfoMessage{}, KeepAliveMessage{}, PingMessage{}, PongMessage{},
	HealthMessage{}, ServerRestartingMessage{},
}

func TestServerKeyCodec(t *testing.T) {
	a, _ := goldenKeys(t)
	got := appendServerKey(nil, a)
	want := unhex(t, "44455250 f09f9491"+keyAHex)
	if !bytes.Equal(got, want) || len(got) != 40 {
		t.Fatalf("appendServerKey = %x; want %x", got, want)
	}
	for _, p := range [][]byte{want, append(bytes.Clone(want), "reserved"...)} {
		if k, err := parseServerKey(p); err != nil || k != a {
			t.Errorf("parseServerKey(%x) = %v, %v; want %v, nil", p, k, err, a)
		}
	}
	bad := bytes.Clone(want)
	bad[7] ^= 1
	if _, err := parseServerKey(bad); !errors.Is(err, ErrBadMagic) {
		t.Errorf("parseServerKey(bad magic) = %v; want ErrBadMagic", err)
	}
}

func TestClientInfoCodec(t *testing.T) {
	a, _ := goldenKeys(t)
	sealed := bytes.Repeat([]byte{0xcc}, NonceLen+16+2)
	got := appendClientInfo([]byte{0x99}, a, sealed)
	want := unhex(t, "99"+keyAHex+strings.Repeat("cc", 42))
	if !bytes.Equal(got, want) {
		t.Fatalf("appendClientInfo = %x; want %x", got, want)
	}
	k, s, err := parseClientInfo(got[1:])
	if err != nil || k != a || !bytes.Equal(s, sealed) {
		t.Errorf("parseClientInfo(%x) = %v, %x, %v; want %v, %x, nil", got[1:], k, s, err, a, sealed)
	}
	// Exactly key + nonce is the shortest accepted.
	if _, s, err := parseClientInfo(make([]byte, 56)); err != nil || len(s) != 24 {
		t.Errorf("parseClientInfo(56 bytes) = %d sealed bytes, %v; want 24, nil", len(s), err)
	}
}

func TestPacketCodecs(t *testing.T) {
	a, b := goldenKeys(t)
	pkt := []byte("packet")
	p := unhex(t, keyAHex+"7061636b6574")
	if dst, got, err := parseSendPacket(p); err != nil || dst != a || !bytes.Equal(got, pkt) {
		t.Errorf("parseSendPacket(%x) = %v, %q, %v", p, dst, got, err)
	}
	if src, got, err := parseRecvPacket(p); err != nil || src != a || !bytes.Equal(got, pkt) {
		t.Errorf("parseRecvPacket(%x) = %v, %q, %v", p, src, got, err)
	}
	fp := unhex(t, keyAHex+keyBHex+"7061636b6574")
	if src, dst, got, err := parseForwardPacket(fp); err != nil || src != a || dst != b || !bytes.Equal(got, pkt) {
		t.Errorf("parseForwardPacket(%x) = %v, %v, %q, %v", fp, src, dst, got, err)
	}
	// Boundaries: empty packets and MaxPacketSize packets are fine.
	if _, got, err := parseSendPacket(p[:KeyLen]); err != nil || len(got) != 0 {
		t.Errorf("parseSendPacket(key only) = %q, %v", got, err)
	}
	if _, _, got, err := parseForwardPacket(fp[:2*KeyLen]); err != nil || len(got) != 0 {
		t.Errorf("parseForwardPacket(keys only) = %q, %v", got, err)
	}
	big := make([]byte, 2*KeyLen+MaxPacketSize)
	if _, got, err := parseSendPacket(big[KeyLen:]); err != nil || len(got) != MaxPacketSize {
		t.Errorf("parseSendPacket(MaxPacketSize) = %d bytes, %v", len(got), err)
	}
	if _, _, got, err := parseForwardPacket(big); err != nil || len(got) != MaxPacketSize {
		t.Errorf("parseForwardPacket(MaxPacketSize) = %d bytes, %v", len(got), err)
	}
	huge := make([]byte, KeyLen+1<<20)
	if _, got, err := parseRecvPacket(huge); err != nil || len(got) != 1<<20 {
		t.Errorf("parseRecvPacket(1 MiB) = %d bytes, %v; the frame limit bounds it, not the codec", len(got), err)
	}
	// Parsed packets alias the payload: no copy on the relay path.
	if _, got, _ := parseSendPacket(p); &got[0] != &p[KeyLen] {
		t.Error("parseSendPacket copied the packet")
	}
}

func TestPeerGoneCodec(t *testing.T) {
	a, _ := goldenKeys(t)
	tests := []struct {
		reason PeerGoneReasonType
		want   string
	}{
		{PeerGoneReasonDisconnected, keyAHex + "00"},
		{PeerGoneReasonNotHere, keyAHex + "01"},
		{PeerGoneReasonMeshConnBroke, keyAHex + "f0"},
	}
	for _, tc := range tests {
		got := appendPeerGone(nil, a, tc.reason)
		if want := unhex(t, tc.want); !bytes.Equal(got, want) {
			t.Errorf("appendPeerGone(%d) = %x; want %x", tc.reason, got, want)
		}
		if m, err := parsePeerGone(got); err != nil || m != (PeerGoneMessage{Peer: a, Reason: tc.reason}) {
			t.Errorf("parsePeerGone(%x) = %+v, %v", got, m, err)
		}
	}
	// Older servers send only the key; extra trailing bytes are ignored.
	if m, err := parsePeerGone(unhex(t, keyAHex)); err != nil || m != (PeerGoneMessage{Peer: a}) {
		t.Errorf("parsePeerGone(32 bytes) = %+v, %v; want Disconnected", m, err)
	}
	if m, err := parsePeerGone(unhex(t, keyAHex+"01ffff")); err != nil || m.Reason != PeerGoneReasonNotHere {
		t.Errorf("parsePeerGone(35 bytes) = %+v, %v; want NotHere", m, err)
	}
}

func TestPeerPresentCodec(t *testing.T) {
	a, _ := goldenKeys(t)
	v4 := netip.MustParseAddrPort("198.51.100.7:41641")
	v6 := netip.MustParseAddrPort("[2001:db8::1]:443")
	tests := []struct {
		name  string
		ipp   netip.AddrPort
		flags PeerPresentFlags
		want  string
	}{
		{"v4 mesh prober", v4, PeerPresentIsMeshPeer | PeerPresentIsProber, keyAHex + "00000000000000000000ffff c6336407 a2a9 06"},
		{"v6 regular", v6, PeerPresentIsRegular, keyAHex + "20010db8000000000000000000000001 01bb 01"},
		{"unknown", netip.AddrPort{}, PeerPresentIsRegular, keyAHex + "00000000000000000000000000000000 0000 01"},
	}
	for _, tc := range tests {
		got := appendPeerPresent(nil, a, tc.ipp, tc.flags, "")
		want := append(unhex(t, tc.want), 0) // empty app name
		if !bytes.Equal(got, want) || len(got) != peerPresentLen+1 {
			t.Errorf("%s: appendPeerPresent = %x; want %x (%d bytes)", tc.name, got, want, peerPresentLen)
			continue
		}
		m, err := parsePeerPresent(got)
		if wantm := (PeerPresentMessage{Key: a, IPPort: tc.ipp, Flags: tc.flags}); err != nil || m != wantm {
			t.Errorf("%s: parsePeerPresent(%x) = %+v, %v; want %+v", tc.name, got, m, err, wantm)
		}
	}
	if peerPresentLen != 51 {
		t.Errorf("peerPresentLen = %d; want 51", peerPresentLen)
	}
	// Progressive parsing of shorter and longer payloads.
	full := appendPeerPresent(nil, a, v4, PeerPresentIsRegular|PeerPresentNotIdeal, "my app")
	if len(full) != 52+6 || full[50] != 0x09 || full[51] != 6 || string(full[52:]) != "my app" {
		t.Errorf("appendPeerPresent with app name = %x", full)
	}
	fl := PeerPresentIsRegular | PeerPresentNotIdeal
	for _, tc := range []struct {
		n    int
		want PeerPresentMessage
	}{
		{32, PeerPresentMessage{Key: a}},
		{49, PeerPresentMessage{Key: a}},
		{50, PeerPresentMessage{Key: a, IPPort: v4}},
		{51, PeerPresentMessage{Key: a, IPPort: v4, Flags: fl}},
		{52, PeerPresentMessage{Key: a, IPPort: v4, Flags: fl}}, // name cut short
		{57, PeerPresentMessage{Key: a, IPPort: v4, Flags: fl}}, // name cut short
		{58, PeerPresentMessage{Key: a, IPPort: v4, Flags: fl, AppName: "my app"}},
		{67, PeerPresentMessage{Key: a, IPPort: v4, Flags: fl, AppName: "my app"}}, // trailing bytes ignored
	} {
		p := append(bytes.Clone(full), make([]byte, 9)...)[:tc.n]
		if m, err := parsePeerPresent(p); err != nil || m != tc.want {
			t.Errorf("parsePeerPresent(%d bytes) = %+v, %v; want %+v", tc.n, m, err, tc.want)
		}
	}
	// A name that is not a valid AppName is dropped, keeping the rest.
	bad := append(appendPeerPresent(nil, a, v4, PeerPresentIsRegular, ""), 3, 'a', 0x7f, 'b')
	bad[51] = 3
	bad = bad[:55]
	if m, err := parsePeerPresent(bad); err != nil || m != (PeerPresentMessage{Key: a, IPPort: v4, Flags: PeerPresentIsRegular}) {
		t.Errorf("parsePeerPresent(invalid name) = %+v, %v", m, err)
	}
	// An IPv4-mapped address comes back as plain IPv4; a zero address
	// with a port keeps the port.
	m, _ := parsePeerPresent(full)
	if !m.IPPort.Addr().Is4() {
		t.Errorf("parsePeerPresent gave %v; want an unmapped IPv4 address", m.IPPort)
	}
	p := unhex(t, keyAHex+"00000000000000000000000000000000 0050 01")
	if m, _ := parsePeerPresent(p); m.IPPort != netip.AddrPortFrom(netip.IPv6Unspecified(), 80) {
		t.Errorf("parsePeerPresent(zero IP, port 80) = %v; want [::]:80", m.IPPort)
	}
}

func TestPingCodec(t *testing.T) {
	data := unhex(t, "0102030405060708")
	for _, ft := range []FrameType{FramePing, FramePong} {
		for _, p := range [][]byte{data, append(bytes.Clone(data), make([]byte, maxPingLen-8)...)} {
			if got, err := parsePing(ft, p); err != nil || got != [8]byte(data) {
				t.Errorf("parsePing(%v, %d bytes) = %x, %v; want %x", ft, len(p), got, err, data)
			}
		}
	}
}

func TestRestartingCodec(t *testing.T) {
	tests := []struct {
		in, try         time.Duration
		want            string
		wantIn, wantTry time.Duration // decoded values
	}{
		{1500 * time.Millisecond, 2 * time.Minute, "000005dc 0001d4c0", 1500 * time.Millisecond, 2 * time.Minute},
		{0, 0, "00000000 00000000", 0, 0},
		{1500 * time.Microsecond, time.Millisecond - 1, "00000001 00000000", time.Millisecond, 0},
		{-time.Second, math.MaxInt64, "00000000 ffffffff", 0, math.MaxUint32 * time.Millisecond},
	}
	for _, tc := range tests {
		got := appendRestarting(nil, tc.in, tc.try)
		if want := unhex(t, tc.want); !bytes.Equal(got, want) {
			t.Errorf("appendRestarting(%v, %v) = %x; want %x", tc.in, tc.try, got, want)
		}
		m, err := parseRestarting(got)
		if want := (ServerRestartingMessage{ReconnectIn: tc.wantIn, TryFor: tc.wantTry}); err != nil || m != want {
			t.Errorf("parseRestarting(%x) = %+v, %v; want %+v", got, m, err, want)
		}
	}
	if m, err := parseRestarting(unhex(t, "000003e8 000007d0 ff")); err != nil || m.ReconnectIn != time.Second || m.TryFor != 2*time.Second {
		t.Errorf("parseRestarting(9 bytes) = %+v, %v", m, err)
	}
}

func TestLooksLikeDisco(t *testing.T) {
	if got, want := []byte(discoMagic), unhex(t, "5453 f09f92ac"); !bytes.Equal(got, want) {
		t.Errorf("discoMagic = %x; want %x", got, want)
	}
	if discoMinLen != 62 {
		t.Errorf("discoMinLen = %d; want 62", discoMinLen)
	}
	msg := append([]byte(discoMagic), make([]byte, KeyLen+NonceLen)...)
	bad := bytes.Clone(msg)
	bad[5] ^= 1
	for _, tc := range []struct {
		name string
		pkt  []byte
		want bool
	}{
		{"minimal", msg, true},
		{"longer", append(bytes.Clone(msg), 1, 2, 3), true},
		{"one short", msg[:len(msg)-1], false},
		{"magic only", msg[:6], false},
		{"bad magic", bad, false},
		{"empty", nil, false},
	} {
		if got := looksLikeDisco(tc.pkt); got != tc.want {
			t.Errorf("looksLikeDisco(%s) = %v; want %v", tc.name, got, tc.want)
		}
	}
}

func TestInfoJSON(t *testing.T) {
	tests := []struct {
		v    any
		want string
	}{
		{clientInfo{Version: ProtocolVersion, CanAckPings: true}, `{"version":2,"CanAckPings":true}`},
		{clientInfo{MeshKey: "abc", Version: 2, IsProber: true}, `{"meshKey":"abc","version":2,"CanAckPings":false,"IsProber":true}`},
		{clientInfo{}, `{"CanAckPings":false}`},
		{serverInfo{Version: ProtocolVersion}, `{"version":2}`},
		{serverInfo{Version: 2, TokenBucketBytesPerSecond: 1000, TokenBucketBytesBurst: 2000}, `{"version":2,"TokenBucketBytesPerSecond":1000,"TokenBucketBytesBurst":2000}`},
	}
	for _, tc := range tests {
		got, err := json.Marshal(tc.v)
		if err != nil || string(got) != tc.want {
			t.Errorf("json.Marshal(%+v) = %s, %v; want %s", tc.v, got, err, tc.want)
		}
	}
	// The reference server's ServerInfo payload is always 53 bytes.
	srv, cli := key.NewNode(), key.NewNode()
	js, _ := json.Marshal(serverInfo{Version: ProtocolVersion})
	sealed, err := srv.SealTo(cli.Public(), js)
	if err != nil || len(sealed) != 53 {
		t.Errorf("sealed ServerInfo = %d bytes, %v; want 53", len(sealed), err)
	}
}

func TestParseMalformed(t *testing.T) {
	sendPacket := func(p []byte) error { _, _, err := parseSendPacket(p); return err }
	recvPacket := func(p []byte) error { _, _, err := parseRecvPacket(p); return err }
	forwardPacket := func(p []byte) error { _, _, _, err := parseForwardPacket(p); return err }
	serverKey := func(p []byte) error { _, err := parseServerKey(p); return err }
	clientInfo := func(p []byte) error { _, _, err := parseClientInfo(p); return err }
	peerGone := func(p []byte) error { _, err := parsePeerGone(p); return err }
	peerPresent := func(p []byte) error { _, err := parsePeerPresent(p); return err }
	ping := func(p []byte) error { _, err := parsePing(FramePing, p); return err }
	pong := func(p []byte) error { _, err := parsePing(FramePong, p); return err }
	restarting := func(p []byte) error { _, err := parseRestarting(p); return err }

	tests := []struct {
		name   string
		parse  func([]byte) error
		n      int
		t      FrameType
		reason string
	}{
		{"server key empty", serverKey, 0, FrameServerKey, "too short"},
		{"server key magic only", serverKey, 8, FrameServerKey, "too short"},
		{"server key 39", serverKey, 39, FrameServerKey, "too short"},
		{"client info empty", clientInfo, 0, FrameClientInfo, "short client info"},
		{"client info key only", clientInfo, 32, FrameClientInfo, "short client info"},
		{"client info 55", clientInfo, 55, FrameClientInfo, "short client info"},
		{"send packet empty", sendPacket, 0, FrameSendPacket, "shorter than a key"},
		{"send packet 31", sendPacket, 31, FrameSendPacket, "shorter than a key"},
		{"send packet too big", sendPacket, KeyLen + MaxPacketSize + 1, FrameSendPacket, "packet too big"},
		{"recv packet 31", recvPacket, 31, FrameRecvPacket, "shorter than a key"},
		{"recv packet empty", recvPacket, 0, FrameRecvPacket, "shorter than a key"},
		{"forward packet one key", forwardPacket, 32, FrameForwardPacket, "shorter than two keys"},
		{"forward packet 63", forwardPacket, 63, FrameForwardPacket, "shorter than two keys"},
		{"forward packet too big", forwardPacket, 2*KeyLen + MaxPacketSize + 1, FrameForwardPacket, "packet too big"},
		{"peer gone 31", peerGone, 31, FramePeerGone, "shorter than a key"},
		{"peer gone empty", peerGone, 0, FramePeerGone, "shorter than a key"},
		{"peer present 31", peerPresent, 31, FramePeerPresent, "shorter than a key"},
		{"ping 7", ping, 7, FramePing, "shorter than 8 bytes"},
		{"ping empty", ping, 0, FramePing, "shorter than 8 bytes"},
		{"pong 7", pong, 7, FramePong, "shorter than 8 bytes"},
		{"restarting 7", restarting, 7, FrameRestarting, "shorter than 8 bytes"},
		{"restarting 4", restarting, 4, FrameRestarting, "shorter than 8 bytes"},
	}
	for _, tc := range tests {
		p := make([]byte, tc.n)
		copy(p, Magic) // so that parseServerKey cannot fail on the magic
		err := tc.parse(p)
		var me *MalformedFrameError
		if !errors.As(err, &me) {
			t.Errorf("%s: parse(%d bytes) = %v; want *MalformedFrameError", tc.name, tc.n, err)
			continue
		}
		if *me != (MalformedFrameError{Type: tc.t, Len: tc.n, Reason: tc.reason}) {
			t.Errorf("%s: parse(%d bytes) = %+v; want {%v %d %q}", tc.name, tc.n, *me, tc.t, tc.n, tc.reason)
		}
	}
}
