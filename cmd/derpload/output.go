package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/openderp/openderp/internal/relayload"
)

// isTerminal reports whether w is a character device, which is what a
// terminal looks like from here.
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}

func printProgress(w io.Writer, p relayload.Progress) {
	fmt.Fprintf(w, "\r\x1b[K%5.0fs  %10.0f pkt/s  sent %d  delivered %d",
		p.Elapsed.Round(time.Second).Seconds(), p.PacketsPerSec, p.Sent, p.Delivered)
}

func clearProgress(w io.Writer) { fmt.Fprint(w, "\r\x1b[K") }

func printText(w io.Writer, r *relayload.Result) {
	fmt.Fprintf(w, "%s: %d pairs x %d B, %s", r.URL, r.Pairs, r.Size, r.Mode)
	if r.Window > 0 {
		fmt.Fprintf(w, " %d in flight", r.Window)
	}
	if r.Rate > 0 {
		fmt.Fprintf(w, " %g pkt/s per pair", r.Rate)
	}
	fmt.Fprintln(w)
	if r.Pairs > 0 {
		fmt.Fprintf(w, "delivered  %d of %d packets in %.2f s, dropped %.2f%%\n",
			r.Delivered, r.Sent, r.Seconds, 100*r.DropFraction)
		fmt.Fprintf(w, "throughput %.0f pkt/s, %.2f MB/s\n", r.PacketsPerSec, r.MBPerSec)
	}
	if r.RTT.Samples > 0 || r.RTT.Lost > 0 {
		fmt.Fprintf(w, "rtt        p50 %.3f ms, p90 %.3f ms, p99 %.3f ms, max %.3f ms (%d probes, %d lost)\n",
			r.RTT.P50, r.RTT.P90, r.RTT.P99, r.RTT.Max, r.RTT.Samples, r.RTT.Lost)
	}
}

// jsonResult is the -json output: the measurement and, if the run failed
// part way, the error.
type jsonResult struct {
	*relayload.Result
	Error string `json:"error,omitempty"`
}

func printJSON(w io.Writer, r *relayload.Result, err error) {
	out := jsonResult{Result: r}
	if err != nil {
		out.Error = err.Error()
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.Encode(out)
}
