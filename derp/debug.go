package derp

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/netip"
	"os/exec"
	"strconv"
	"strings"
	"time"

	"github.com/openderp/openderp/key"
)

// ConsistencyCheck reports an error listing every inconsistency it finds
// between the server's tables, or nil.
//
// Unlike the reference, which compares the number of connections with the
// number of keys and so fails whenever a client has two connections, it
// compares connections with connections. See docs/compat.md#consistency-check.
func (s *Server) ConsistencyCheck() error {
	var errs []string
	s.mu.Lock()
	nilMissing, missing, conns := 0, 0, 0
	for k, fwd := range s.clientsMesh {
		if _, ok := s.clients[k]; !ok && fwd == nil {
			nilMissing++
		}
	}
	for k, set := range s.clients {
		if _, ok := s.clientsMesh[k]; !ok {
			missing++
		}
		conns += set.len()
	}
	s.mu.Unlock()
	if nilMissing > 0 {
		errs = append(errs, fmt.Sprintf("%d s.clientsMesh keys not in s.clients", nilMissing))
	}
	if missing > 0 {
		errs = append(errs, fmt.Sprintf("%d s.clients keys not in s.clientsMesh", missing))
	}
	if got := s.metrics.curConns.Value(); got != int64(conns) {
		errs = append(errs, fmt.Sprintf("expvar connections = %d != clients map says of %d", got, conns))
	}
	s.cfgMu.RLock()
	verify, sock := s.verifyClients, s.tailscaledSock
	s.cfgMu.RUnlock()
	if verify {
		if err := s.checkSelfVerifies(sock); err != nil {
			errs = append(errs, fmt.Sprintf("the local tailscaled's own node key would not be admitted: %v", err))
		}
	}
	if len(errs) == 0 {
		return nil
	}
	return errors.New(strings.Join(errs, ", "))
}

func (s *Server) checkSelfVerifies(sock string) error {
	ctx, cancel := context.WithTimeout(context.Background(), admissionTimeout)
	defer cancel()
	self, err := selfNodeKey(ctx, sock)
	if err != nil {
		return err
	}
	return s.verifyClient(ctx, self, &clientInfo{IsProber: true}, "[::1]:0")
}

// trafficInterval is how often ServeDebugTraffic samples the sockets.
const trafficInterval = 2 * time.Second

// ServeDebugTraffic streams, every two seconds, one JSON line per client
// connection whose TCP byte counters moved, with the bytes sent and
// received and the client's key, then an empty line. It reads the counters
// with the Linux ss(8) tool and runs until the request ends.
func (s *Server) ServeDebugTraffic(w http.ResponseWriter, r *http.Request) {
	prev := map[netip.AddrPort][2]int64{}
	flusher, _ := w.(http.Flusher)
	for {
		out, err := exec.CommandContext(r.Context(), "ss", "-i", "-H", "-t").Output()
		if err != nil {
			fmt.Fprintf(w, "cannot read the socket counters with ss: %v\n", err)
			return
		}
		next := parseSS(out)
		keys := s.trafficKeys(next)
		enc := json.NewEncoder(w)
		for ap, k := range keys {
			cur := next[ap]
			if old, ok := prev[ap]; ok && old == cur {
				continue
			}
			enc.Encode(struct {
				Sent, Recv    int64
				Key           key.NodePublic
				UniqueSenders int64 `json:",omitempty"`
			}{cur[0], cur[1], k.key, k.senders})
		}
		prev = next
		fmt.Fprintln(w)
		if flusher != nil {
			flusher.Flush()
		}
		select {
		case <-r.Context().Done():
			return
		case <-time.After(trafficInterval):
		}
	}
}

// trafficKey is the key of a socket and, with TS_DERP_SENDER_CARDINALITY,
// the number of distinct senders of the key's active connection.
type trafficKey struct {
	key     key.NodePublic
	senders int64
}

// trafficKeys maps the sockets in next to their clients.
func (s *Server) trafficKeys(next map[netip.AddrPort][2]int64) map[netip.AddrPort]trafficKey {
	s.mu.Lock()
	defer s.mu.Unlock()
	keys := make(map[netip.AddrPort]trafficKey, len(next))
	for ap := range next {
		k, ok := s.keyOfAddr[ap]
		if !ok {
			continue
		}
		tk := trafficKey{key: k}
		if set := s.clients[k]; set != nil && set.active != nil && s.env.senderCardinality {
			tk.senders = set.active.stats.senders.Load()
		}
		keys[ap] = tk
	}
	return keys
}

// parseSS reads the output of "ss -i -H -t": a line per socket whose fifth
// field is the peer address, followed by a line of details including
// bytes_sent: and bytes_received:.
func parseSS(out []byte) map[netip.AddrPort][2]int64 {
	res := map[netip.AddrPort][2]int64{}
	sc := bufio.NewScanner(bytes.NewReader(out))
	var peer netip.AddrPort
	havePeer := false
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, " ") && !strings.HasPrefix(line, "\t") {
			f := strings.Fields(line)
			havePeer = false
			if len(f) >= 5 {
				if ap, err := netip.ParseAddrPort(f[4]); err == nil {
					peer = netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
					havePeer = true
				}
			}
			continue
		}
		if !havePeer {
			continue
		}
		var sent, recv int64
		for _, f := range strings.Fields(line) {
			if v, ok := strings.CutPrefix(f, "bytes_sent:"); ok {
				sent, _ = strconv.ParseInt(v, 10, 64)
			} else if v, ok := strings.CutPrefix(f, "bytes_received:"); ok {
				recv, _ = strconv.ParseInt(v, 10, 64)
			}
		}
		res[peer] = [2]int64{sent, recv}
		havePeer = false
	}
	return res
}
