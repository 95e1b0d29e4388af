package derp

import (
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"

	"github.com/openderp/openderp/key"
)

// serverEnv holds the environment knobs a Server reads once, when it is
// made. The reference reads TS_DERP_DISABLE_RTT_STATS per connection, so a
// bad value kills it at the first connection; reading everything up front
// lets CheckEnv report it at startup instead.
type serverEnv struct {
	// disableRTT (TS_DERP_DISABLE_RTT_STATS) keeps the TCP RTT sampler
	// from starting.
	disableRTT bool
	// senderCardinality (TS_DERP_SENDER_CARDINALITY) shows each
	// connection's number of distinct senders on the debug pages.
	senderCardinality bool
	// verboseDrops (TS_DEBUG_VERBOSE_DROPS) lists destination keys
	// whose packet drops are logged.
	verboseDrops map[key.NodePublic]bool
}

// readServerEnv parses the knobs from getenv. On error it still returns
// every knob that parsed.
func readServerEnv(getenv func(string) string) (serverEnv, error) {
	var e serverEnv
	var errs []string
	boolVar := func(name string, dst *bool) {
		v := getenv(name)
		if v == "" {
			return
		}
		b, err := strconv.ParseBool(v)
		if err != nil {
			errs = append(errs, fmt.Sprintf("invalid boolean environment variable %s value %q", name, v))
			return
		}
		*dst = b
	}
	boolVar("TS_DERP_DISABLE_RTT_STATS", &e.disableRTT)
	boolVar("TS_DERP_SENDER_CARDINALITY", &e.senderCardinality)
	for _, f := range strings.Split(getenv("TS_DEBUG_VERBOSE_DROPS"), ",") {
		f = strings.TrimSpace(f)
		if f == "" {
			continue
		}
		k, err := key.ParseNodePublicUntyped(f)
		if err != nil {
			errs = append(errs, fmt.Sprintf("invalid key %q in TS_DEBUG_VERBOSE_DROPS: %v", f, err))
			continue
		}
		if e.verboseDrops == nil {
			e.verboseDrops = make(map[key.NodePublic]bool)
		}
		e.verboseDrops[k] = true
	}
	if len(errs) > 0 {
		return e, fmt.Errorf("%s", strings.Join(errs, "; "))
	}
	return e, nil
}

// CheckEnv reports an error if an environment variable read by
// NewServer (TS_DERP_DISABLE_RTT_STATS, TS_DERP_SENDER_CARDINALITY,
// TS_DEBUG_VERBOSE_DROPS, TS_DEBUG_DERP_PER_CLIENT_SEND_QUEUE_DEPTH) has a
// value that does not parse. NewServer itself falls back to the default
// for such a variable; a daemon should call CheckEnv first and refuse to
// start, as the reference does.
func CheckEnv() error {
	_, err := readServerEnv(os.Getenv)
	_, qerr := SendQueueDepthFromEnv()
	return errors.Join(err, qerr)
}
