package prober

import (
	"github.com/prometheus/client_golang/prometheus"
)

// Describe implements prometheus.Collector. The Prober is an unchecked
// collector: the set of probes, and so of metrics, changes at run time.
func (p *Prober) Describe(chan<- *prometheus.Desc) {}

// Collect implements prometheus.Collector. For every probe it emits, with
// constant labels name, class, the class labels and the probe labels:
// interval_secs and in_flight always; start_secs once a run started; and
// end_secs, result, latency_millis (when non-zero), attempts_total and
// seconds_total (by status "ok" and "fail", both always) once a run
// finished. Extra metrics of the
// probe's class follow.
func (p *Prober) Collect(ch chan<- prometheus.Metric) {
	for _, pr := range p.sorted() {
		pr.collect(p.namespace, ch)
	}
}

func (pr *Probe) collect(ns string, ch chan<- prometheus.Metric) {
	labels := prometheus.Labels{"name": pr.name, "class": pr.class.Class}
	for k, v := range pr.labels {
		labels[k] = v
	}
	emit := func(name, help string, typ prometheus.ValueType, v float64, status ...string) {
		var varLabels []string
		if len(status) > 0 {
			varLabels = []string{"status"}
		}
		desc := prometheus.NewDesc(prometheus.BuildFQName(ns, "", name), help, varLabels, labels)
		m, err := prometheus.NewConstMetric(desc, typ, v, status...)
		if err != nil {
			m = prometheus.NewInvalidMetric(desc, err)
		}
		ch <- m
	}

	pr.mu.Lock()
	start, end, latency, ok := pr.start, pr.end, pr.latency, pr.lastErr == ""
	attempts, seconds, inFlight := pr.attempts, pr.seconds, pr.inFlight
	pr.mu.Unlock()

	emit("interval_secs", "Probe interval in seconds; negative for a continuous probe.", prometheus.GaugeValue, pr.interval.Seconds())
	emit("in_flight", "Number of runs of the probe in progress.", prometheus.GaugeValue, float64(inFlight))
	if !start.IsZero() {
		emit("start_secs", "Unix time the latest probe run started.", prometheus.GaugeValue, unixSecs(start))
	}
	if !end.IsZero() {
		emit("end_secs", "Unix time the latest probe run ended.", prometheus.GaugeValue, unixSecs(end))
		res := 0.0
		if ok {
			res = 1
		}
		emit("result", "Whether the latest probe run succeeded (1) or failed (0).", prometheus.GaugeValue, res)
		if latency > 0 {
			emit("latency_millis", "Latency of the latest successful probe run in milliseconds.", prometheus.GaugeValue, float64(latency.Milliseconds()))
		}
		// Both outcomes once a run was recorded, the missing one at 0.
		for i, status := range []string{"fail", "ok"} {
			emit("attempts_total", "Probe runs by outcome.", prometheus.CounterValue, float64(attempts[i]), status)
		}
		for i, status := range []string{"fail", "ok"} {
			emit("seconds_total", "Total time spent in probe runs by outcome, in seconds.", prometheus.CounterValue, seconds[i], status)
		}
	}
	if pr.class.Metrics != nil {
		for _, m := range pr.class.Metrics(ns, Labels(labels)) {
			ch <- m
		}
	}
}

func unixSecs(t interface{ UnixNano() int64 }) float64 {
	return float64(t.UnixNano()) / 1e9
}
