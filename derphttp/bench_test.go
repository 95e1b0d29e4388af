package derphttp_test

import (
	"context"
	"testing"

	"github.com/openderp/openderp/derp"
	"github.com/openderp/openderp/derphttp"
	"github.com/openderp/openderp/key"
)

// BenchmarkRelay measures one 1280-byte packet from one client, through a
// server behind the HTTP handler, to another client.
func BenchmarkRelay(b *testing.B) {
	ca := newTestCA(b)
	for _, bc := range []struct {
		name string
		o    serverOpts
		ca   *testCA
	}{
		{"http", serverOpts{}, nil},
		{"tls", serverOpts{tls: ca, metaCert: true}, ca},
	} {
		b.Run(bc.name, func(b *testing.B) {
			ts := newTestServer(b, bc.o)
			src, dst := newClient(b, ts, bc.ca), newClient(b, ts, bc.ca)
			waitServerInfo(b, src)
			waitServerInfo(b, dst)
			pkt := make([]byte, 1280)
			dstKey := dst.SelfPublicKey()
			// At most window packets are in flight, fewer than the
			// server queues per client, so none is dropped and every
			// Send is matched by a receive.
			const window = 32
			got := make(chan struct{}, window)
			errc := make(chan error, 1)
			go func() {
				var p derp.ReceivedPacket
				for {
					m, err := dst.RecvInto(&p)
					if err != nil {
						errc <- err
						return
					}
					if m == &p {
						got <- struct{}{}
					}
				}
			}()
			for range window {
				got <- struct{}{}
			}
			b.SetBytes(int64(len(pkt)))
			b.ReportAllocs()
			b.ResetTimer()
			for range b.N {
				<-got
				if err := src.Send(dstKey, pkt); err != nil {
					b.Fatal(err)
				}
			}
			for range window {
				<-got
			}
			b.StopTimer()
			dst.Close()
			<-errc
		})
	}
}

// BenchmarkForwardPacket measures a mesh peer forwarding one 1280-byte
// packet through a server to a local client, the path a derp.Server takes
// when it hands packets to a *derphttp.Client as its PacketForwarder.
func BenchmarkForwardPacket(b *testing.B) {
	const meshKey = "bench-mesh"
	ts := newTestServer(b, serverOpts{meshKey: meshKey})
	fwd, err := derphttp.NewClient(ts.s.PrivateKey(), ts.url, nil)
	if err != nil {
		b.Fatal(err)
	}
	defer fwd.Close()
	fwd.MeshKey = meshKey
	dst := newClient(b, ts, nil)
	waitServerInfo(b, dst)
	if err := fwd.Connect(context.Background()); err != nil {
		b.Fatal(err)
	}
	src := key.NewNode().Public()
	dstKey := dst.SelfPublicKey()
	pkt := make([]byte, 1280)
	const window = 32
	got := make(chan struct{}, window)
	errc := make(chan error, 1)
	go func() {
		var p derp.ReceivedPacket
		for {
			m, err := dst.RecvInto(&p)
			if err != nil {
				errc <- err
				return
			}
			if m == &p {
				got <- struct{}{}
			}
		}
	}()
	for range window {
		got <- struct{}{}
	}
	b.SetBytes(int64(len(pkt)))
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		<-got
		if err := fwd.ForwardPacket(src, dstKey, pkt); err != nil {
			b.Fatal(err)
		}
	}
	for range window {
		<-got
	}
	b.StopTimer()
	dst.Close()
	<-errc
}
