package main

import (
	"flag"
	"testing"

	"github.com/openderp/openderp/derp"
	"github.com/openderp/openderp/key"
)

func TestMaxConnsPerKeyFlag(t *testing.T) {
	for _, tt := range []struct {
		args []string
		want int
	}{
		{nil, derp.DefaultMaxConnsPerKey},
		{[]string{"-max-conns-per-key=3"}, 3},
	} {
		fs := flag.NewFlagSet("derper", flag.ContinueOnError)
		o := registerFlags(fs, flagDefaults{})
		if err := fs.Parse(tt.args); err != nil {
			t.Fatal(err)
		}
		s := derp.NewServer(key.NewNode(), t.Logf)
		o.limits.applyServer(s)
		if s.MaxConnsPerKey != tt.want {
			t.Errorf("%v: Server.MaxConnsPerKey = %d; want %d", tt.args, s.MaxConnsPerKey, tt.want)
		}
		s.Close()
	}
}
