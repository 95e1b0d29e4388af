package prober

import "time"

// SetNow replaces the Prober's clock for status page ages.
func (p *Prober) SetNow(now func() time.Time) { p.now = now }

var InitialDelay = initialDelay

var ProbeSTUN = probeSTUN

var TUNAddrs = tunAddrs
