package derptest

import (
	"errors"
	"io"
	"net"
	"os"
	"testing"
	"time"
)

func TestPipeBothWriteFirst(t *testing.T) {
	a, b := Pipe()
	defer a.Close()
	defer b.Close()
	if _, err := a.Write([]byte("hello")); err != nil {
		t.Fatal(err)
	}
	if _, err := b.Write([]byte("world")); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 5)
	if _, err := io.ReadFull(b, buf); err != nil || string(buf) != "hello" {
		t.Fatalf("b read %q, %v; want hello", buf, err)
	}
	if _, err := io.ReadFull(a, buf); err != nil || string(buf) != "world" {
		t.Fatalf("a read %q, %v; want world", buf, err)
	}
}

func TestPipeCloseGivesEOFAfterDrain(t *testing.T) {
	a, b := Pipe()
	a.Write([]byte("xy"))
	a.Close()
	got, err := io.ReadAll(b)
	if err != nil || string(got) != "xy" {
		t.Fatalf("ReadAll = %q, %v; want xy, nil", got, err)
	}
	if _, err := b.Write([]byte("z")); err == nil {
		t.Fatal("write to closed peer succeeded")
	}
	if _, err := a.Read(make([]byte, 1)); !errors.Is(err, net.ErrClosed) {
		t.Fatalf("read on closed end: %v; want net.ErrClosed", err)
	}
}

func TestPipeReadDeadline(t *testing.T) {
	a, b := Pipe()
	defer a.Close()
	defer b.Close()
	a.SetReadDeadline(time.Now().Add(20 * time.Millisecond))
	_, err := a.Read(make([]byte, 1))
	if !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("Read = %v; want deadline exceeded", err)
	}
	a.SetReadDeadline(time.Time{})
	b.Write([]byte{1})
	if n, err := a.Read(make([]byte, 1)); n != 1 || err != nil {
		t.Fatalf("Read after clearing deadline = %d, %v", n, err)
	}
}

func TestPipeWriteBlocksWhenFullUntilDeadline(t *testing.T) {
	a, b := PipeSize(4)
	defer a.Close()
	defer b.Close()
	a.SetWriteDeadline(time.Now().Add(20 * time.Millisecond))
	n, err := a.Write([]byte("123456"))
	if n != 4 || !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("Write = %d, %v; want 4, deadline exceeded", n, err)
	}
}

func TestPipeUnblocksWriterWhenReaderDrains(t *testing.T) {
	a, b := PipeSize(2)
	defer a.Close()
	defer b.Close()
	done := make(chan error, 1)
	go func() {
		_, err := a.Write([]byte("abcdef"))
		done <- err
	}()
	got := make([]byte, 6)
	if _, err := io.ReadFull(b, got); err != nil || string(got) != "abcdef" {
		t.Fatalf("ReadFull = %q, %v", got, err)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}
