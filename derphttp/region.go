package derphttp

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"time"

	"github.com/openderp/openderp/derpmap"
)

// dialRegion dials the region's DERP nodes in order and returns the first
// connection made. If only is not empty and names a node of the region,
// it dials that node alone (a restarting node, see restart.go).
func (c *Client) dialRegion(ctx context.Context, r *derpmap.Region, only string) (net.Conn, *derpmap.Node, error) {
	if len(r.Nodes) == 0 {
		return nil, nil, fmt.Errorf("no nodes for %s", regionName(r))
	}
	nodes := r.Nodes
	if only != "" {
		for _, n := range r.Nodes {
			if n.Name == only && !n.STUNOnly {
				nodes = []*derpmap.Node{n}
				break
			}
		}
	}
	var firstErr error
	for _, n := range nodes {
		if n.STUNOnly {
			if firstErr == nil {
				firstErr = fmt.Errorf("no non-STUNOnly nodes for %s", regionName(r))
			}
			continue
		}
		nc, err := c.dialNode(ctx, n)
		if err == nil {
			return nc, n, nil
		}
		if firstErr == nil {
			firstErr = err
		}
		if ctx.Err() != nil {
			break
		}
	}
	return nil, nil, firstErr
}

func regionName(r *derpmap.Region) string {
	return fmt.Sprintf("region %d (%s)", r.RegionID, r.RegionCode)
}

// dialNode makes a TCP connection to one node: through the environment's
// proxy if it names one, otherwise to its IPv4 and IPv6 addresses at
// once, keeping whichever connects first.
func (c *Client) dialNode(ctx context.Context, n *derpmap.Node) (net.Conn, error) {
	if proxy, err := c.proxyFunc(nodeURL(n)); err == nil && proxy != nil {
		return dialProxy(ctx, proxy, n)
	}
	ctx, cancel := context.WithTimeout(ctx, nodeDialTimeout)
	defer cancel()

	v4, ok4 := nodeAddr(n.IPv4, n.HostName, true)
	v6, ok6 := nodeAddr(n.IPv6, n.HostName, false)
	if !ok4 && !ok6 {
		return nil, errors.New("both IPv4 and IPv6 are explicitly disabled for node")
	}
	port := fmt.Sprint(n.Port())

	type result struct {
		nc  net.Conn
		err error
	}
	results := make(chan result, 2) // buffered: losers never block
	preferV6 := c.preferIPv6 != nil && c.preferIPv6()
	attempt := func(network, host string, delay time.Duration) {
		if delay > 0 {
			t := time.NewTimer(delay)
			select {
			case <-t.C:
			case <-ctx.Done():
				t.Stop()
				results <- result{err: ctx.Err()}
				return
			}
		}
		var d net.Dialer
		nc, err := d.DialContext(ctx, network, net.JoinHostPort(host, port))
		results <- result{nc, err}
	}
	pending := 0
	if ok4 {
		var delay time.Duration
		if preferV6 && ok6 {
			delay = 200 * time.Millisecond
		}
		pending++
		go attempt("tcp4", v4, delay)
	}
	if ok6 {
		pending++
		go attempt("tcp6", v6, 0)
	}
	var firstErr error
	for ; pending > 0; pending-- {
		r := <-results
		if r.err == nil {
			cancel() // the other attempt gives up
			// Close whatever the other attempt still produces.
			if pending > 1 {
				go func() {
					if r := <-results; r.nc != nil {
						r.nc.Close()
					}
				}()
			}
			return r.nc, nil
		}
		if firstErr == nil {
			firstErr = r.err
		}
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	return nil, firstErr
}

// nodeAddr interprets a node's IPv4 or IPv6 field: empty means resolve
// host (or, for an IP-literal host, dial it if the family matches), a literal of the right family means dial it, anything else (by
// convention "none") disables the family.
func nodeAddr(field, host string, v4 bool) (string, bool) {
	if field == "" {
		// An IP-literal host name only has its own family.
		if ip, err := netip.ParseAddr(host); err == nil && ip.Unmap().Is4() != v4 {
			return "", false
		}
		return host, true
	}
	ip, err := netip.ParseAddr(field)
	if err != nil || ip.Is4() != v4 || ip.Zone() != "" {
		return "", false
	}
	return ip.String(), true
}

// DialRegionTLS makes a TLS connection to the first reachable node of
// region without speaking DERP, for measuring latency. The caller closes
// the connection.
func (c *Client) DialRegionTLS(ctx context.Context, region *derpmap.Region) (*tls.Conn, *derpmap.Node, error) {
	ctx, cancel := context.WithTimeout(ctx, connectTimeout)
	defer cancel()
	tcp, node, err := c.dialRegion(ctx, region, "")
	if err != nil {
		return nil, nil, err
	}
	tc := tls.Client(tcp, c.tlsConfig(node))
	if err := tc.HandshakeContext(ctx); err != nil {
		tcp.Close()
		return nil, nil, err
	}
	return tc, node, nil
}
