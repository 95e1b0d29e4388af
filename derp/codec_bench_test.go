package derp

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"testing"
)

// benchPayloadSizes are a small packet, a typical WireGuard MTU-sized
// packet and the largest payload a uint16-sized packet reaches.
var benchPayloadSizes = []int{100, 1280, 65535}

// benchBufSize is the bufio size of the benchmarks, a plausible choice for
// a connection's reader and writer.
const benchBufSize = 32 << 10

// The payload is written in two parts, a key and a packet, as a server
// writes RecvPacket frames. SetBytes counts payload bytes only.
func BenchmarkWriteFrame(b *testing.B) {
	for _, size := range benchPayloadSizes {
		b.Run(fmt.Sprint(size), func(b *testing.B) {
			src := bytes.Repeat([]byte{0x01}, KeyLen)
			pkt := bytes.Repeat([]byte{0x5a}, size-KeyLen)
			bw := bufio.NewWriterSize(io.Discard, benchBufSize)
			b.SetBytes(int64(size))
			b.ReportAllocs()
			for b.Loop() {
				if err := WriteFrame(bw, FrameRecvPacket, src, pkt); err != nil {
					b.Fatal(err)
				}
			}
			if err := bw.Flush(); err != nil {
				b.Fatal(err)
			}
		})
	}
}

func BenchmarkReadFrame(b *testing.B) {
	for _, size := range benchPayloadSizes {
		b.Run(fmt.Sprint(size), func(b *testing.B) {
			frame := encodeFrame(b, FrameSendPacket, bytes.Repeat([]byte{0x5a}, size))
			br := bufio.NewReaderSize(&loopReader{data: frame}, benchBufSize)
			buf := make([]byte, 0, KeyLen+MaxPacketSize)
			b.SetBytes(int64(size))
			b.ReportAllocs()
			for b.Loop() {
				ft, p, err := ReadFrame(br, KeyLen+MaxPacketSize, buf)
				if err != nil || ft != FrameSendPacket || len(p) != size {
					b.Fatalf("ReadFrame = %v, %d bytes, %v", ft, len(p), err)
				}
			}
		})
	}
}
