package prober_test

import (
	"crypto/tls"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/ocsp"

	"github.com/openderp/openderp/derpmap"
	"github.com/openderp/openderp/prober"
	"github.com/openderp/openderp/prober/probertest"
)

// ocspResponder answers every OCSP request with status.
func ocspResponder(t *testing.T, ca *probertest.CA, status int) string {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != "POST" || r.Header.Get("Content-Type") != "application/ocsp-request" {
			http.Error(w, "bad request", 400)
			return
		}
		body, _ := io.ReadAll(r.Body)
		req, err := ocsp.ParseRequest(body)
		if err != nil {
			http.Error(w, err.Error(), 400)
			return
		}
		if status < 0 {
			http.Error(w, "responder down", 500)
			return
		}
		now := time.Now()
		resp, err := ocsp.CreateResponse(ca.Cert, ca.Cert, ocsp.Response{
			Status:           status,
			SerialNumber:     req.SerialNumber,
			ThisUpdate:       now.Add(-time.Minute),
			NextUpdate:       now.Add(time.Hour),
			RevokedAt:        now.Add(-time.Minute),
			RevocationReason: ocsp.KeyCompromise,
		}, ca.Key)
		if err != nil {
			http.Error(w, err.Error(), 500)
			return
		}
		w.Header().Set("Content-Type", "application/ocsp-response")
		w.Write(resp)
	}))
	t.Cleanup(srv.Close)
	return srv.URL
}

func TestTLSProbe(t *testing.T) {
	ca := probertest.NewCA(t)
	now := time.Now()
	tests := []struct {
		name       string
		leaf       probertest.LeafOpts
		ocsp       int    // responder status; 0 means no responder, -1 a failing one
		crl        string // "" no CRL, "good", "revoked" or "down"
		leCA       bool   // issue from a Let's Encrypt-style CA
		noMetaCert bool
		wantErr    string // "" for success
	}{
		{name: "valid"},
		{name: "expires in 3 days", leaf: probertest.LeafOpts{NotBefore: now.Add(-60 * 24 * time.Hour), NotAfter: now.Add(72 * time.Hour)}, wantErr: "expires in 71h"},
		{name: "short-lived, fresh", leaf: probertest.LeafOpts{NotBefore: now.Add(-time.Hour), NotAfter: now.Add(6 * 24 * time.Hour)}},
		{name: "short-lived, overdue", leaf: probertest.LeafOpts{NotBefore: now.Add(-5 * 24 * time.Hour), NotAfter: now.Add(24 * time.Hour)}, wantErr: "expires in 23h"},
		{name: "lets encrypt style, neither OCSP nor CRL", leCA: true},
		{name: "crl good", crl: "good"},
		{name: "crl revoked", crl: "revoked", wantErr: "has been revoked on"},
		{name: "crl down", crl: "down", wantErr: "non-200 status code from CRL server: 404"},
		{name: "crl wins over ocsp", crl: "revoked", ocsp: ocsp.Good + 100, wantErr: "has been revoked on"},
		{name: "expired", leaf: probertest.LeafOpts{NotBefore: now.Add(-48 * time.Hour), NotAfter: now.Add(-24 * time.Hour)}, wantErr: "certificate has expired"},
		{name: "not yet valid", leaf: probertest.LeafOpts{NotBefore: now.Add(24 * time.Hour)}, wantErr: "not yet valid"},
		{name: "no meta cert", noMetaCert: true, wantErr: "no DERP meta certificate presented"},
		{name: "ocsp good", ocsp: ocsp.Good + 100},
		{name: "ocsp revoked", ocsp: ocsp.Revoked + 100, wantErr: "revoked at"},
		{name: "ocsp unknown", ocsp: ocsp.Unknown + 100, wantErr: "is unknown"},
		{name: "ocsp down", ocsp: -1, wantErr: "500 Internal Server Error"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ca := ca
			if tt.leCA {
				ca = probertest.NewLetsEncryptStyleCA(t)
			}
			opts := tt.leaf
			var crls *probertest.CRLServer
			switch tt.crl {
			case "good", "revoked":
				crls = ca.ServeCRL(t)
				opts.CRLURL = crls.URL
			case "down":
				opts.CRLURL = crls404(t)
			}
			switch {
			case tt.ocsp > 0:
				opts.OCSPServer = ocspResponder(t, ca, tt.ocsp-100)
			case tt.ocsp < 0:
				opts.OCSPServer = ocspResponder(t, ca, -1)
			}
			leaf := ca.Leaf(t, opts)
			if tt.crl == "revoked" {
				crls.Revoke(leaf.Leaf)
			}
			if tt.crl == "good" {
				crls.Revoke(ca.Leaf(t, probertest.LeafOpts{}).Leaf) // another one
			}
			n := probertest.StartNode(t, probertest.NodeOpts{CA: ca, Leaf: &leaf, NoMetaCert: tt.noMetaCert})
			src := &mapSource{m: &derpmap.Map{Regions: map[int]*derpmap.Region{
				1: probertest.Region(1, "t", n.MapNode("n", 1)),
			}}}
			p := prober.New().WithOnce(true)
			defer p.Close()
			dp, err := prober.DERP(p, "https://example.invalid/", prober.WithFetch(src.fetch),
				prober.WithTLSProbing(10*time.Second), prober.WithTLSConfig(&tls.Config{RootCAs: ca.Pool}))
			if err != nil {
				t.Fatal(err)
			}
			p.Run("derpmap-probe", 10*time.Second, nil, dp.ProbeMap())
			p.Wait()
			info, ok := p.ProbeInfo()["derp/t/n/tls"]
			if !ok {
				t.Fatalf("no TLS probe; probes: %v", p.ProbeInfo())
			}
			if tt.wantErr == "" {
				if !info.Succeeded() {
					t.Errorf("TLS probe failed: %s", info.Error)
				}
				if crls != nil && crls.Hits.Load() != 1 {
					t.Errorf("CRL fetched %d times; want 1", crls.Hits.Load())
				}
				return
			}
			if info.Succeeded() || !strings.Contains(info.Error, tt.wantErr) {
				t.Errorf("TLS probe: Result %v, Error %q; want failure containing %q", info.Succeeded(), info.Error, tt.wantErr)
			}
		})
	}
}

// crls404 returns a CRL URL whose server answers 404.
func crls404(t *testing.T) string {
	srv := httptest.NewServer(http.NotFoundHandler())
	t.Cleanup(srv.Close)
	return srv.URL + "/missing.crl"
}
