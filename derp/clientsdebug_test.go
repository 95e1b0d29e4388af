package derp

import (
	"net/netip"
	"testing"

	"github.com/openderp/openderp/key"
)

func TestConnSnapshots(t *testing.T) {
	s := NewServer(key.NewNode(), t.Logf)
	defer s.Close()
	s.env.senderCardinality = true
	a := pipeClientOpts(t, s, "192.0.2.10:10", ConnOptions{NotIdeal: true}, AppName("app-a"))
	b := pipeClientOpts(t, s, "[2001:db8::1]:11", ConnOptions{}, IsProber(true))
	if err := a.NotePreferred(true); err != nil {
		t.Fatal(err)
	}
	for _, n := range []int{10, 20, 30} {
		if err := a.Send(b.PublicKey(), make([]byte, n)); err != nil {
			t.Fatal(err)
		}
		recvPacket(t, b)
	}
	// A ping round trip orders the NotePreferred before the snapshot.
	a.SendPing([8]byte{9})
	for {
		if _, ok := recvMsg(t, a).(PongMessage); ok {
			break
		}
	}
	snaps := map[key.NodePublic]ConnSnapshot{}
	for _, cs := range s.ConnSnapshots() {
		snaps[cs.Key] = cs
	}
	sa, sb := snaps[a.PublicKey()], snaps[b.PublicKey()]
	tests := []struct {
		name      string
		got, want any
	}{
		{"count", len(snaps), 2},
		{"a remote", sa.RemoteAddr, netip.MustParseAddrPort("192.0.2.10:10")},
		{"b remote", sb.RemoteAddr, netip.MustParseAddrPort("[2001:db8::1]:11")},
		{"a notIdeal", sa.NotIdeal, true},
		{"a app", sa.AppName, "app-a"},
		{"a home", sa.Home, true},
		{"a active", sa.Active, true},
		{"a rx", [2]int64{sa.RxPackets, sa.RxBytes}, [2]int64{3, 60}},
		{"a tx", [2]int64{sa.TxPackets, sa.TxBytes}, [2]int64{0, 0}},
		{"b tx", [2]int64{sb.TxPackets, sb.TxBytes}, [2]int64{3, 60}},
		{"b senders", sb.Senders, int64(1)},
		{"b prober", sb.Prober, true},
		{"b version", sb.Version, ProtocolVersion},
		{"conn order", sa.ConnNum < sb.ConnNum, true},
	}
	for _, tt := range tests {
		if tt.got != tt.want {
			t.Errorf("%s = %v; want %v", tt.name, tt.got, tt.want)
		}
	}
	s.env.senderCardinality = false
	for _, cs := range s.ConnSnapshots() {
		if cs.Senders != 0 {
			t.Errorf("senders shown with TS_DERP_SENDER_CARDINALITY off: %+v", cs)
		}
	}
}

func TestTrafficKeysUniqueSenders(t *testing.T) {
	s := NewServer(key.NewNode(), t.Logf)
	defer s.Close()
	a := pipeClientOpts(t, s, "192.0.2.20:20", ConnOptions{})
	b := pipeClientOpts(t, s, "192.0.2.21:21", ConnOptions{})
	if err := a.Send(b.PublicKey(), []byte("x")); err != nil {
		t.Fatal(err)
	}
	recvPacket(t, b)
	addr := netip.MustParseAddrPort("192.0.2.21:21")
	next := map[netip.AddrPort][2]int64{addr: {1, 2}, netip.MustParseAddrPort("192.0.2.99:1"): {}}
	for _, on := range []bool{false, true} {
		s.env.senderCardinality = on
		got := s.trafficKeys(next)
		want := trafficKey{key: b.PublicKey()}
		if on {
			want.senders = 1
		}
		if len(got) != 1 || got[addr] != want {
			t.Errorf("cardinality %v: %+v; want %+v", on, got, want)
		}
	}
}
