package relayload_test

import (
	"context"
	"fmt"
	"net/http/httptest"
	"time"

	"github.com/openderp/openderp/derp"
	"github.com/openderp/openderp/derphttp"
	"github.com/openderp/openderp/internal/relayload"
	"github.com/openderp/openderp/key"
)

// Eight pairs with 32 packets of 1280 bytes in flight each, for a tenth of
// a second, against a server on loopback.
func ExampleRun() {
	s := derp.NewServer(key.NewNode(), func(string, ...any) {})
	defer s.Close()
	ts := httptest.NewServer(derphttp.Handler(s))
	defer ts.Close()

	res, err := relayload.Run(context.Background(), relayload.Config{
		URL:    ts.URL + "/derp",
		Pairs:  8,
		Size:   1280,
		Window: 32,
		// Stop after 2,000 packets (Duration only bounds the run), so
		// that what is printed does not depend on the machine's speed.
		Duration:   time.Minute,
		MaxPackets: 2000,
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(res.Mode, res.Pairs, res.Delivered > 0, res.RTT.Samples > 0)
	// Output: window 8 true true
}
