package prober_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/openderp/openderp/prober"
)

// Run each probe once and report what failed, as derpprobe -once does.
func ExampleProber_Wait() {
	p := prober.New().WithOnce(true)
	defer p.Close()
	p.Run("always-ok", time.Minute, nil, prober.ProbeClass{
		Class: "demo",
		Probe: func(context.Context) error { return nil },
	})
	p.Run("always-bad", time.Minute, prober.Labels{"site": "lab"}, prober.ProbeClass{
		Class: "demo",
		Probe: func(context.Context) error { return errors.New("unreachable") },
	})
	p.Wait()
	for _, name := range []string{"always-bad", "always-ok"} {
		info := p.ProbeInfo()[name]
		fmt.Printf("%s: ok=%v error=%q\n", name, info.Succeeded(), info.Error)
	}
	// Output:
	// always-bad: ok=false error="unreachable"
	// always-ok: ok=true error=""
}

// Keep probing a DERP map, serving a status page and metrics.
func ExampleDERP() {
	p := prober.New().WithSpread(true).WithMetricNamespace("derpprobe")
	defer p.Close()
	dp, err := prober.DERP(p, "https://login.tailscale.com/derpmap/default",
		prober.WithTLSProbing(15*time.Second),
		prober.WithSTUNProbing(15*time.Second),
		prober.WithMeshProbing(15*time.Second))
	if err != nil {
		fmt.Println(err)
		return
	}
	p.Run("derpmap-probe", 15*time.Second, nil, dp.ProbeMap())

	reg := prometheus.NewRegistry()
	reg.MustRegister(p)
	mux := http.NewServeMux()
	mux.Handle("/", p.StatusHandler("DERP Prober"))
	mux.HandleFunc(prober.RunPath, p.RunHandler)
	_ = mux // serve it with http.ListenAndServe(":8030", mux)
}
