package derphttp

import (
	"bufio"
	"context"
	"crypto/tls"
	"encoding/base64"
	"fmt"
	"net"
	"net/http"
	"net/url"

	"github.com/openderp/openderp/derpmap"
)

// envProxy finds the proxy for a URL from HTTPS_PROXY, HTTP_PROXY and
// NO_PROXY.
func envProxy(u *url.URL) (*url.URL, error) {
	return http.ProxyFromEnvironment(&http.Request{URL: u})
}

// nodeURL is the URL whose proxy a node is dialed through.
func nodeURL(n *derpmap.Node) *url.URL {
	return &url.URL{Scheme: "https", Host: n.HostName, Path: "/"}
}

// dialProxy connects to n through an HTTP CONNECT proxy. The tunnel always
// targets HostName:443, ignoring DERPPort and the node's IP fields, as the
// reference does.
// See docs/compat.md#proxy-target.
func dialProxy(ctx context.Context, proxy *url.URL, n *derpmap.Node) (net.Conn, error) {
	host := proxy.Hostname()
	port := proxy.Port()
	if port == "" {
		port = "80"
		if proxy.Scheme == "https" {
			port = "443"
		}
	}
	var d net.Dialer
	pc, err := d.DialContext(ctx, "tcp", net.JoinHostPort(host, port))
	if err != nil {
		return nil, fmt.Errorf("dialing proxy %s: %w", proxy.Host, err)
	}
	stop := context.AfterFunc(ctx, func() { pc.Close() })
	defer stop()
	if proxy.Scheme == "https" {
		tc := tls.Client(pc, &tls.Config{ServerName: host})
		if err := tc.HandshakeContext(ctx); err != nil {
			pc.Close()
			return nil, fmt.Errorf("TLS to proxy %s: %w", proxy.Host, err)
		}
		pc = tc
	}

	target := net.JoinHostPort(n.HostName, "443")
	req := "CONNECT " + target + " HTTP/1.1\r\nHost: " + target + "\r\n"
	if auth := proxyAuth(proxy); auth != "" {
		req += "Proxy-Authorization: " + auth + "\r\n"
	}
	req += "\r\n"
	if _, err := pc.Write([]byte(req)); err != nil {
		pc.Close()
		return nil, fmt.Errorf("writing CONNECT to proxy: %w", err)
	}
	br := bufio.NewReader(pc)
	res, err := http.ReadResponse(br, &http.Request{Method: http.MethodConnect})
	if err != nil {
		pc.Close()
		return nil, fmt.Errorf("reading CONNECT response from proxy: %w", err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusOK {
		pc.Close()
		return nil, fmt.Errorf("proxy refused CONNECT to %s: %s", target, res.Status)
	}
	// See docs/compat.md#proxy-target.
	if br.Buffered() > 0 {
		// The proxy must not speak for the server before we do.
		pc.Close()
		return nil, fmt.Errorf("proxy sent %d unexpected bytes after CONNECT", br.Buffered())
	}
	if ctx.Err() != nil {
		pc.Close()
		return nil, ctx.Err()
	}
	return pc, nil
}

// proxyAuth returns the Proxy-Authorization value for credentials in the
// proxy URL, or "".
func proxyAuth(u *url.URL) string {
	if u.User == nil {
		return ""
	}
	user := u.User.Username()
	pass, _ := u.User.Password()
	return "Basic " + base64.StdEncoding.EncodeToString([]byte(user+":"+pass))
}
