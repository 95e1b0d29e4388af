package derp

import (
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/openderp/openderp/key"
)

func TestDropCountersPrometheus(t *testing.T) {
	s := NewServer(key.NewNode(), nil)
	defer s.Close()
	disco := append([]byte(discoMagic), make([]byte, KeyLen+NonceLen)...)
	s.recordDrop(key.NodePublic{}, key.NodePublic{}, disco, dropUnknownDest)
	s.recordDrop(key.NodePublic{}, key.NodePublic{}, make([]byte, 100), dropQueueHead)
	s.recordDrop(key.NodePublic{}, key.NodePublic{}, make([]byte, 20), dropQueueHead)

	pk, by := s.DropVars()
	var b strings.Builder
	pk.WritePrometheus(&b, "derp_packets_dropped")
	want := `# TYPE derp_packets_dropped counter
# HELP derp_packets_dropped DERP packets dropped by reason and by kind
derp_packets_dropped{reason="dup_client",kind="disco"} 0
derp_packets_dropped{reason="dup_client",kind="other"} 0
derp_packets_dropped{reason="gone_disconnected",kind="disco"} 0
derp_packets_dropped{reason="gone_disconnected",kind="other"} 0
derp_packets_dropped{reason="queue_head",kind="disco"} 0
derp_packets_dropped{reason="queue_head",kind="other"} 2
derp_packets_dropped{reason="queue_tail",kind="disco"} 0
derp_packets_dropped{reason="queue_tail",kind="other"} 0
derp_packets_dropped{reason="unknown_dest",kind="disco"} 1
derp_packets_dropped{reason="unknown_dest",kind="other"} 0
derp_packets_dropped{reason="unknown_dest_on_fwd",kind="disco"} 0
derp_packets_dropped{reason="unknown_dest_on_fwd",kind="other"} 0
derp_packets_dropped{reason="write_error",kind="disco"} 0
derp_packets_dropped{reason="write_error",kind="other"} 0
`
	if b.String() != want {
		t.Errorf("packets:\n%s\nwant:\n%s", b.String(), want)
	}
	if got := by.Value("queue_head", "other"); got != 120 {
		t.Errorf("bytes queue_head/other = %d; want 120", got)
	}
	if got := by.Value("unknown_dest", "disco"); got != int64(len(disco)) {
		t.Errorf("bytes unknown_dest/disco = %d", got)
	}
	b.Reset()
	by.WritePrometheus(&b, "derp_bytes_dropped")
	if !strings.HasPrefix(b.String(), "# TYPE derp_bytes_dropped counter\n# HELP derp_bytes_dropped DERP bytes dropped by reason and by kind\n") {
		t.Errorf("bytes header:\n%s", b.String())
	}
	// The JSON form shows the counts.
	var js map[string]map[string]int64
	if err := json.Unmarshal([]byte(pk.String()), &js); err != nil || js["queue_head"]["other"] != 2 || len(js) != 7 {
		t.Errorf("String() = %s, %v", pk.String(), err)
	}
	// The old names keep counting.
	if got := s.metrics.packetsDropped.Value(); got != 3 {
		t.Errorf("packets_dropped = %d", got)
	}
}

func TestVerboseDropLog(t *testing.T) {
	var mu sync.Mutex
	var lines []string
	logf := func(format string, args ...any) {
		mu.Lock()
		defer mu.Unlock()
		lines = append(lines, fmt.Sprintf(format, args...))
	}
	s := NewServer(key.NewNode(), logf)
	defer s.Close()
	src, dst, other := key.NewNode().Public(), key.NewNode().Public(), key.NewNode().Public()
	s.env.verboseDrops = map[key.NodePublic]bool{dst: true}
	s.recordDrop(src, other, nil, dropUnknownDest)
	s.recordDrop(src, dst, nil, dropUnknownDestOnFwd)
	mu.Lock()
	defer mu.Unlock()
	want := fmt.Sprintf("drop (%s) unknown_dest_on_fwd -> %s", src.ShortString(), dst.ShortString())
	if len(lines) != 1 || lines[0] != want {
		t.Errorf("logged %q; want [%q]", lines, want)
	}
}

func TestReadServerEnv(t *testing.T) {
	k := key.NewNode().Public()
	tests := []struct {
		name    string
		env     map[string]string
		want    serverEnv
		wantErr bool
	}{
		{"empty", nil, serverEnv{}, false},
		{"bools", map[string]string{"TS_DERP_DISABLE_RTT_STATS": "1", "TS_DERP_SENDER_CARDINALITY": "true"}, serverEnv{disableRTT: true, senderCardinality: true}, false},
		{"bad bool", map[string]string{"TS_DERP_DISABLE_RTT_STATS": "yes", "TS_DERP_SENDER_CARDINALITY": "T"}, serverEnv{senderCardinality: true}, true},
		{"drops", map[string]string{"TS_DEBUG_VERBOSE_DROPS": " " + k.UntypedHexString() + ",,"}, serverEnv{verboseDrops: map[key.NodePublic]bool{k: true}}, false},
		{"bad drop key", map[string]string{"TS_DEBUG_VERBOSE_DROPS": "zz"}, serverEnv{}, true},
	}
	for _, tt := range tests {
		got, err := readServerEnv(func(k string) string { return tt.env[k] })
		if (err != nil) != tt.wantErr {
			t.Errorf("%s: err = %v; want error %v", tt.name, err, tt.wantErr)
		}
		if got.disableRTT != tt.want.disableRTT || got.senderCardinality != tt.want.senderCardinality || len(got.verboseDrops) != len(tt.want.verboseDrops) {
			t.Errorf("%s: got %+v; want %+v", tt.name, got, tt.want)
		}
		for k := range tt.want.verboseDrops {
			if !got.verboseDrops[k] {
				t.Errorf("%s: key %v missing", tt.name, k)
			}
		}
	}
}

func TestCheckEnvQueueDepth(t *testing.T) {
	for _, tt := range []struct {
		v       string
		wantErr bool
	}{{"", false}, {"64", false}, {"many", true}} {
		t.Setenv(SendQueueDepthEnv, tt.v)
		if err := CheckEnv(); (err != nil) != tt.wantErr {
			t.Errorf("%s=%q: CheckEnv = %v; want error %v", SendQueueDepthEnv, tt.v, err, tt.wantErr)
		}
	}
}
