package main

import (
	"flag"
	"io"
	"strings"
	"testing"
)

func TestAdmissionOptionsCheck(t *testing.T) {
	tests := []struct {
		args    []string
		wantErr string
	}{
		{nil, ""},
		{[]string{"-verify-clients-file", "/k"}, ""},
		{[]string{"-verify-clients-tailnet-oauth-file", "/o"}, ""},
		{[]string{"-verify-clients-tailnet-oauth-file", "/o", "-verify-clients-tailnet", "example.com", "-verify-clients-tailnet-fail-open", "-verify-clients-tailnet-refresh", "5m"}, ""},
		{[]string{"-verify-clients-tailnet", "example.com"}, "need -verify-clients-tailnet-oauth-file"},
		{[]string{"-verify-clients-tailnet-fail-open"}, "need -verify-clients-tailnet-oauth-file"},
		{[]string{"-verify-clients-tailnet-refresh", "2m"}, "need -verify-clients-tailnet-oauth-file"},
		{[]string{"-verify-clients-tailnet-api-url", "http://127.0.0.1:1"}, "need -verify-clients-tailnet-oauth-file"},
		{[]string{"-verify-clients-tailnet-oauth-file", "/o", "-verify-clients-tailnet-refresh", "10ms"}, "at least 1s"},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			fs := flag.NewFlagSet("derper", flag.ContinueOnError)
			fs.SetOutput(io.Discard)
			o := registerFlags(fs, flagDefaults{})
			if err := fs.Parse(tt.args); err != nil {
				t.Fatal(err)
			}
			err := o.admission.check()
			if tt.wantErr == "" && err != nil || tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)) {
				t.Errorf("check = %v, want %q", err, tt.wantErr)
			}
		})
	}
}
