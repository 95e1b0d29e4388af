// Package relayload drives a DERP server with synthetic relay traffic and
// measures what comes out: pairs of clients, each sender writing to its own
// receiver, plus a probe pair that bounces one packet at a time through
// the server to time round trips. cmd/derpload is its command-line front
// end; bench/compare uses it to compare servers side by side.
package relayload

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/url"
	"time"

	"github.com/openderp/openderp/derp"
)

// Limits that keep every run bounded.
const (
	MaxPairs    = 10000
	MaxDuration = time.Hour
	MinSize     = 16
	MaxSize     = derp.MaxPacketSize
	MaxWindow   = 1 << 16
)

// Config describes one load run.
type Config struct {
	// URL is the server's DERP endpoint, such as "http://127.0.0.1:3340/derp"
	// or "https://derp.example.net/derp".
	URL string
	// TLSConfig, if non-nil, is the base TLS configuration for https URLs;
	// see PinnedTLSConfig for a certificate pin.
	TLSConfig *tls.Config
	// Dial, if non-nil, dials the server's TCP address instead of the
	// platform dialer.
	Dial func(ctx context.Context, network, addr string) (net.Conn, error)

	// Pairs is the number of sender/receiver client pairs. Zero runs only
	// the round-trip probe.
	Pairs int
	// Size is the payload size of each packet in bytes.
	Size int
	// Window, if positive, is how many packets each pair keeps in flight:
	// a sender waits for its receiver before going further ahead.
	Window int
	// Rate, if positive, is the packets per second each sender sends at
	// most. With neither Window nor Rate the senders go flat out.
	Rate float64
	// Duration is how long the senders send.
	Duration time.Duration
	// MaxPackets, if positive, ends sending once this many packets have
	// been sent in total.
	MaxPackets int64

	// RTTInterval is the pause between two probe round trips; zero means
	// 10ms and a negative value turns the probe off.
	RTTInterval time.Duration

	// Progress, if non-nil, is called about every ProgressInterval (zero:
	// one second) while packets are sent.
	Progress         func(Progress)
	ProgressInterval time.Duration
	// Started, if non-nil, is called once every client is connected, just
	// before the first packet; Stopped once the last packet has arrived or
	// been given up, before the clients disconnect. Callers sample server
	// resources there.
	Started, Stopped func()
}

// Mode names how senders pace themselves: "window", "rate", "window+rate"
// or "flat".
func (c *Config) Mode() string {
	switch {
	case c.Window > 0 && c.Rate > 0:
		return "window+rate"
	case c.Window > 0:
		return "window"
	case c.Rate > 0:
		return "rate"
	}
	return "flat"
}

// Check reports the first setting of c that is out of range, as Run would.
func (c *Config) Check() error {
	u, err := url.Parse(c.URL)
	if err != nil {
		return fmt.Errorf("relayload: server URL: %w", err)
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return fmt.Errorf("relayload: server URL %q: scheme must be http or https", c.URL)
	}
	switch {
	case c.Pairs < 0 || c.Pairs > MaxPairs:
		return fmt.Errorf("relayload: pairs %d out of range [0, %d]", c.Pairs, MaxPairs)
	case c.Size < MinSize || c.Size > MaxSize:
		return fmt.Errorf("relayload: packet size %d out of range [%d, %d]", c.Size, MinSize, MaxSize)
	case c.Window < 0 || c.Window > MaxWindow:
		return fmt.Errorf("relayload: window %d out of range [0, %d]", c.Window, MaxWindow)
	case c.Rate < 0:
		return errors.New("relayload: negative rate")
	case c.Duration <= 0 || c.Duration > MaxDuration:
		return fmt.Errorf("relayload: duration %v out of range (0, %v]", c.Duration, MaxDuration)
	case c.MaxPackets < 0:
		return errors.New("relayload: negative packet limit")
	}
	return nil
}

// Progress is a snapshot of a run in progress.
type Progress struct {
	Elapsed   time.Duration
	Sent      int64
	Delivered int64
	// PacketsPerSec is the delivery rate since the previous snapshot.
	PacketsPerSec float64
}

// Result is what a run measured. Rates count delivered packets over the
// time from the first send to the last delivery.
type Result struct {
	URL           string  `json:"url"`
	Mode          string  `json:"mode"`
	Pairs         int     `json:"pairs"`
	Size          int     `json:"size"`
	Window        int     `json:"window,omitempty"`
	Rate          float64 `json:"rate,omitempty"`
	Seconds       float64 `json:"seconds"`
	Sent          int64   `json:"sent"`
	Delivered     int64   `json:"delivered"`
	DropFraction  float64 `json:"drop_fraction"`
	PacketsPerSec float64 `json:"packets_per_sec"`
	MBPerSec      float64 `json:"mb_per_sec"`
	RTT           RTT     `json:"rtt"`
}

// RTT summarises the probe's round trips, in milliseconds.
type RTT struct {
	Samples int     `json:"samples"`
	Lost    int     `json:"lost"`
	P50     float64 `json:"p50_ms"`
	P90     float64 `json:"p90_ms"`
	P99     float64 `json:"p99_ms"`
	Max     float64 `json:"max_ms"`
}
