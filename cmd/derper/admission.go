package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"time"

	"github.com/openderp/openderp/derp"
	"github.com/openderp/openderp/internal/admission"
)

// keyFilePollInterval is how often the -verify-clients-file list is
// checked for changes: one stat per tick.
const keyFilePollInterval = 5 * time.Second

// minTailnetRefresh is the shortest -verify-clients-tailnet-refresh.
const minTailnetRefresh = time.Second

// admissionOptions are the openderp-only admission flags; see
// docs/operating.md#admitting-clients.
type admissionOptions struct {
	keyFile         string
	tailnetOAuth    string
	tailnet         string
	tailnetAPIURL   string
	tailnetRefresh  time.Duration
	tailnetFailOpen bool
}

func registerAdmissionFlags(fs *flag.FlagSet, a *admissionOptions) {
	fs.StringVar(&a.keyFile, "verify-clients-file", "", "openderp only: file of the node keys admitted (nodekey:<64 hex digits>, one per line, # comments); re-read on SIGHUP and when it changes; empty disables")
	fs.StringVar(&a.tailnetOAuth, "verify-clients-tailnet-oauth-file", "", "openderp only: file with the client_id and client_secret of a Tailscale OAuth client (scope devices:core:read); admits only the node keys of the tailnet's authorized devices, listed through the Tailscale API; empty disables")
	fs.StringVar(&a.tailnet, "verify-clients-tailnet", "-", "openderp only: tailnet whose devices -verify-clients-tailnet-oauth-file admits; \"-\" means the OAuth client's own")
	fs.StringVar(&a.tailnetAPIURL, "verify-clients-tailnet-api-url", admission.DefaultAPIURL, "openderp only: base URL of the Tailscale API used by -verify-clients-tailnet-oauth-file")
	fs.DurationVar(&a.tailnetRefresh, "verify-clients-tailnet-refresh", admission.DefaultTailnetRefresh, "openderp only: how often -verify-clients-tailnet-oauth-file fetches the device list (also soon after an unknown key is refused, and on SIGHUP)")
	fs.BoolVar(&a.tailnetFailOpen, "verify-clients-tailnet-fail-open", false, "openderp only: until the Tailscale API has answered once, admit every client (true) or none (false); afterwards the last device list stays in force while the API fails")
}

// check rejects tailnet settings given without the OAuth file, which
// would otherwise be silently ignored.
func (a *admissionOptions) check() error {
	if a.tailnetOAuth == "" {
		if a.tailnet != "-" || a.tailnetAPIURL != admission.DefaultAPIURL || a.tailnetRefresh != admission.DefaultTailnetRefresh || a.tailnetFailOpen {
			return errors.New("derper: the -verify-clients-tailnet-* flags need -verify-clients-tailnet-oauth-file")
		}
		return nil
	}
	if a.tailnetRefresh < minTailnetRefresh {
		return errors.New("derper: -verify-clients-tailnet-refresh must be at least 1s")
	}
	return nil
}

// setupAdmission adds the checks the admission flags ask for to s, in
// the order key file, then tailnet, registers their reloads on hub and
// runs their background work until ctx ends.
func setupAdmission(ctx context.Context, s *derp.Server, a *admissionOptions, hub *reloadHub, logf func(string, ...any)) error {
	if err := a.check(); err != nil {
		return err
	}
	if a.keyFile != "" {
		kf, err := admission.OpenKeyFile(a.keyFile, logf)
		if err != nil {
			return fmt.Errorf("derper: -verify-clients-file: %w", err)
		}
		s.AddAdmitFunc(kf.Admit)
		publish("derper_admission_file", kf.ExpVar())
		hub.add("verify-clients-file", func() { kf.Reload("SIGHUP") })
		tick := time.NewTicker(keyFilePollInterval)
		go func() {
			defer tick.Stop()
			kf.Poll(ctx, tick.C)
		}()
		logf("derper: admitting the %d node keys listed in %s (and mesh peers)", kf.Len(), a.keyFile)
	}
	if a.tailnetOAuth != "" {
		creds, err := admission.ReadOAuthCredentials(a.tailnetOAuth)
		if err != nil {
			return fmt.Errorf("derper: -verify-clients-tailnet-oauth-file: %w", err)
		}
		if fi, err := os.Stat(a.tailnetOAuth); err == nil && fi.Mode().Perm()&0o007 != 0 {
			logf("derper: warning: %s holds a secret but every user may read it; chmod o-rwx it", a.tailnetOAuth)
		}
		tn, err := admission.NewTailnet(admission.TailnetConfig{
			APIURL:      a.tailnetAPIURL,
			Tailnet:     a.tailnet,
			Credentials: creds,
			Refresh:     a.tailnetRefresh,
			FailOpen:    a.tailnetFailOpen,
			Logf:        logf,
		})
		if err != nil {
			return fmt.Errorf("derper: -verify-clients-tailnet-api-url: %w", err)
		}
		s.AddAdmitFunc(tn.Admit)
		publish("derper_admission_tailnet", tn.ExpVar())
		hub.add("tailnet device list", tn.RefreshSoon)
		go tn.Run(ctx)
		mode := "fail-closed"
		if a.tailnetFailOpen {
			mode = "fail-open"
		}
		logf("derper: admitting the devices of tailnet %q listed by %s, refreshed every %v (%s until it first answers)", a.tailnet, a.tailnetAPIURL, a.tailnetRefresh, mode)
	}
	return nil
}
