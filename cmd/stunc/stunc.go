package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/openderp/openderp/stun"
)

// defaultTimeout is the -timeout default, as in the reference since
// v1.80.0. See docs/compat.md#stunc-timeout.
const defaultTimeout = 3 * time.Second

// parseCommandLine parses args (program name first) as
// "stunc [-timeout D] <hostname> [port]". It returns the program name and
// positional arguments, and the timeout. On a usage error it writes the
// problem, the usage line and the flag defaults to errOut.
func parseCommandLine(args []string, errOut io.Writer) ([]string, time.Duration, error) {
	fs := flag.NewFlagSet(args[0], flag.ContinueOnError)
	fs.SetOutput(errOut)
	timeout := fs.Duration("timeout", defaultTimeout, "how long to wait for the reply; must be positive")
	usage := func() {
		fmt.Fprintf(errOut, "usage: %s <hostname> [port]\n", args[0])
		fs.PrintDefaults()
	}
	fs.Usage = usage
	if err := fs.Parse(args[1:]); err != nil {
		return nil, 0, err
	}
	if n := fs.NArg(); n != 1 && n != 2 {
		usage()
		return nil, 0, errors.New("wrong number of arguments")
	}
	if *timeout <= 0 {
		// The reference fails at once for such values; waiting for
		// ever would be no better. See docs/compat.md#stunc-timeout.
		fmt.Fprintf(errOut, "invalid -timeout %v: must be positive\n", *timeout)
		usage()
		return nil, 0, errors.New("invalid timeout")
	}
	return append([]string{args[0]}, fs.Args()...), *timeout, nil
}

// run does what stunc does with the command line args (program name
// first), writing its report to w and waiting at most timeout for the
// reply. It returns the error to print, if any.
func run(ctx context.Context, args []string, w io.Writer, timeout time.Duration) error {
	if len(args) != 2 && len(args) != 3 {
		return fmt.Errorf("usage: %s <hostname> [port]", args[0])
	}
	host, port := args[1], strconv.Itoa(stun.DefaultPort)
	if len(args) == 3 {
		if _, err := strconv.ParseUint(args[2], 10, 16); err != nil {
			return fmt.Errorf("invalid port: %w", err)
		}
		port = args[2]
	}
	hostport := net.JoinHostPort(host, port)
	if strings.HasPrefix(host, "[") {
		hostport = host + ":" + port // already a bracketed IPv6 literal
	}
	server, err := net.ResolveUDPAddr("udp", hostport)
	if err != nil {
		return err
	}

	conn, err := net.ListenUDP("udp", nil)
	if err != nil {
		return err
	}
	defer conn.Close()
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	defer stop()

	tx := stun.NewTxID()
	if _, err := conn.WriteToUDP(stun.Request(tx), server); err != nil {
		return fmt.Errorf("sending binding request to %v: %w", server, err)
	}
	if err := conn.SetReadDeadline(time.Now().Add(timeout)); err != nil {
		return err
	}
	buf := make([]byte, 1024)
	n, from, err := conn.ReadFromUDPAddrPort(buf)
	if err != nil {
		if errors.Is(err, os.ErrDeadlineExceeded) {
			return fmt.Errorf("no reply from %v within %v: %w", server, timeout, err)
		}
		if ctx.Err() != nil {
			return fmt.Errorf("waiting for reply from %v: %w", server, ctx.Err())
		}
		return fmt.Errorf("waiting for reply from %v: %w", server, err)
	}
	gotTx, addr, err := stun.ParseResponse(buf[:n])
	if err != nil {
		return fmt.Errorf("bad reply from %v: %w", from, err)
	}
	if gotTx != tx {
		return fmt.Errorf("txid mismatch: got %v, want %v", gotTx, tx)
	}
	fmt.Fprintf(w, "sent addr: %v\n", server)
	fmt.Fprintf(w, "from addr: %v\n", from)
	fmt.Fprintf(w, "stun addr: %v\n", addr)
	return nil
}
