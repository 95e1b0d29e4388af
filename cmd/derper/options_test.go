package main

import (
	"strings"
	"testing"
	"time"
)

func TestCheckOptions(t *testing.T) {
	tests := []struct {
		name string
		set  func(*options)
		env  string // TS_DEBUG_TRUSTED_CIDRS
		err  string
	}{
		{"defaults", func(*options) {}, "", ""},
		{"zero write timeout", func(o *options) { o.tcpWriteTimeout = 0 }, "", ""},
		{"negative write timeout", func(o *options) { o.tcpWriteTimeout = -time.Second }, "", "must not be negative"},
		{"home", func(o *options) { o.home = "nope" }, "", `unknown --home value "nope"`},
		{"mesh", func(o *options) { o.meshWith = "a/b/c" }, "", "startMesh: too many components"},
		{"tls 1.3", func(o *options) { o.tlsMinVersion = "1.3" }, "", ""},
		{"tls 1.1", func(o *options) { o.tlsMinVersion = "1.1" }, "", `-tls-min-version "1.1": want "1.2" or "1.3"`},
		{"cidrs", func(*options) {}, "10.0.0.0/8, 10.0.0.1", "invalid CIDR"},
		{"good cidrs", func(*options) {}, " 10.0.0.0/8 , fd00::/8", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Setenv("TS_DEBUG_TRUSTED_CIDRS", tt.env)
			o := opts()
			tt.set(o)
			_, err := checkOptions(o)
			if (err == nil) != (tt.err == "") || err != nil && !strings.Contains(err.Error(), tt.err) {
				t.Errorf("error %v, want %q", err, tt.err)
			}
		})
	}
}
