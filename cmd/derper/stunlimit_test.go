package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/openderp/openderp/stun"
)

func TestSTUNLimitFlags(t *testing.T) {
	tests := []struct {
		args    []string
		rate    int
		burst   int
		wantErr string
	}{
		{nil, 1200, 4800, ""},
		{[]string{"-stun-reflect-limit", "0"}, 0, 4800, ""},
		{[]string{"-stun-reflect-limit", "0", "-stun-reflect-burst", "0"}, 0, 0, ""},
		{[]string{"-stun-reflect-limit", "12", "-stun-reflect-burst", "24"}, 12, 24, ""},
		{[]string{"-stun-reflect-limit", "-1"}, -1, 4800, "must not be negative"},
		{[]string{"-stun-reflect-burst", "23"}, 1200, 23, "at least 24"},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			fs := flag.NewFlagSet("derper", flag.ContinueOnError)
			o := registerFlags(fs, flagDefaults{})
			if err := fs.Parse(tt.args); err != nil {
				t.Fatal(err)
			}
			if o.stunLimit.rate != tt.rate || o.stunLimit.burst != tt.burst {
				t.Errorf("rate, burst = %d, %d; want %d, %d", o.stunLimit.rate, o.stunLimit.burst, tt.rate, tt.burst)
			}
			err := o.stunLimit.check()
			if tt.wantErr == "" && err != nil || tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)) {
				t.Errorf("check() = %v; want error containing %q", err, tt.wantErr)
			}
		})
	}
}

// TestE2ESTUNReflectLimit runs derper with the reflection bound at its
// default, tight and off, sends ten bare 20-byte binding requests (each
// answer 12 bytes larger) and then one Tailscale-style request, and
// checks which were answered and the counters.
func TestE2ESTUNReflectLimit(t *testing.T) {
	const bare = 10
	tests := []struct {
		name        string
		args        []string
		wantAnswers int // of the bare requests
	}{
		{"default", nil, bare},
		// A 24-byte burst pays for two answers; one byte a second
		// refills the next in 12 s, longer than the test.
		{"tight", []string{"-stun-reflect-limit", "1", "-stun-reflect-burst", "24"}, 2},
		{"off", []string{"-stun-reflect-limit", "0"}, bare},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			port, stunPort := freePort(t, "tcp"), freePort(t, "udp")
			args := append([]string{"-a", fmt.Sprintf("127.0.0.1:%d", port), "-c", filepath.Join(t.TempDir(), "c.json"),
				"-stun-port", fmt.Sprint(stunPort)}, tt.args...)
			d := startDerper(t, nil, args...)
			uc, err := net.Dial("udp", fmt.Sprintf("127.0.0.1:%d", stunPort))
			if err != nil {
				t.Fatal(err)
			}
			defer uc.Close()
			stats := func() (success, limited int) {
				resp, body := httpGet(t, &http.Client{Timeout: 10 * time.Second}, fmt.Sprintf("http://127.0.0.1:%d/debug/vars", port))
				if resp.StatusCode != 200 {
					t.Fatalf("/debug/vars: %d", resp.StatusCode)
				}
				var v struct {
					STUN struct {
						Requests map[string]int `json:"counter_requests"`
						Limited  int            `json:"counter_amplification_limited"`
					} `json:"stun"`
				}
				if err := json.Unmarshal([]byte(body), &v); err != nil {
					t.Fatalf("/debug/vars: %v", err)
				}
				return v.STUN.Requests["success"], v.STUN.Limited
			}
			// The STUN socket may still be starting after derper logs
			// that it serves: Tailscale-style requests, answered whatever
			// the bound, tell when it is up.
			waitSTUN(t, uc)
			success0, limited0 := stats()

			txs := make(map[stun.TxID]bool)
			for range bare {
				tx := stun.NewTxID()
				txs[tx] = true
				req := append([]byte{0, 1, 0, 0, 0x21, 0x12, 0xA4, 0x42}, tx[:]...)
				if _, err := uc.Write(req); err != nil {
					t.Fatal(err)
				}
			}
			// Every datagram is counted as answered or limited; wait
			// (bounded) until all ten are.
			var success, limited int
			for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
				success, limited = stats()
				success, limited = success-success0, limited-limited0
				if success+limited >= bare || time.Now().After(deadline) {
					break
				}
			}
			if success != tt.wantAnswers || limited != bare-tt.wantAnswers {
				t.Errorf("answered %d, limited %d; want %d, %d", success, limited, tt.wantAnswers, bare-tt.wantAnswers)
			}
			got := 0
			buf := make([]byte, 1500)
			for got < tt.wantAnswers {
				uc.SetReadDeadline(time.Now().Add(5 * time.Second))
				n, err := uc.Read(buf)
				if err != nil {
					t.Fatalf("%d answers to bare requests, want %d: %v", got, tt.wantAnswers, err)
				}
				tx, _, err := stun.ParseResponse(buf[:n])
				if err != nil {
					t.Fatalf("answer %x: %v", buf[:n], err)
				}
				if !txs[tx] {
					continue // a late answer to a readiness request
				}
				if n != 32 {
					t.Errorf("answer of %d bytes, want 32", n)
				}
				got++
			}
			// Even with the budget spent, a Tailscale client's request
			// (no larger answer than itself) is answered.
			exchangeFull(t, uc)
			d.stop(t)
		})
	}
}

// exchangeFull sends a Tailscale-style binding request on uc and waits
// (at most 5 s) for its answer.
func exchangeFull(t *testing.T, uc net.Conn) {
	t.Helper()
	tx := stun.NewTxID()
	if _, err := uc.Write(stun.Request(tx)); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 1500)
	for {
		uc.SetReadDeadline(time.Now().Add(5 * time.Second))
		n, err := uc.Read(buf)
		if err != nil {
			t.Fatalf("no answer to a full request: %v", err)
		}
		if rtx, _, err := stun.ParseResponse(buf[:n]); err == nil && rtx == tx {
			return
		}
	}
}

// waitSTUN sends Tailscale-style requests on uc every 100 ms until one is
// answered, for at most 10 s.
func waitSTUN(t *testing.T, uc net.Conn) {
	t.Helper()
	buf := make([]byte, 1500)
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); {
		tx := stun.NewTxID()
		uc.Write(stun.Request(tx)) // refused while the socket is not bound yet
		uc.SetReadDeadline(time.Now().Add(100 * time.Millisecond))
		for {
			n, err := uc.Read(buf)
			if err != nil {
				break
			}
			if rtx, _, err := stun.ParseResponse(buf[:n]); err == nil && rtx == tx {
				return
			}
		}
	}
	t.Fatal("STUN server never answered")
}
