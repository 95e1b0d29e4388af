package derphttp

import (
	"net/url"
	"time"
)

// SetProxyFunc replaces the environment proxy lookup, which never proxies
// loopback addresses.
func (c *Client) SetProxyFunc(f func(*url.URL) (*url.URL, error)) { c.proxyFunc = f }

// SetWatchRetry shortens RunWatchConnectionLoop's back-off.
func (c *Client) SetWatchRetry(d time.Duration) { c.watchRetry = d }

// BreakConn closes the current connection's transport under the client,
// as a network failure would.
func (c *Client) BreakConn() bool {
	cc := c.cur.Load()
	if cc == nil {
		return false
	}
	cc.nc.Close()
	return true
}

// ConnGen returns the connection generation.
func (c *Client) ConnGen() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.connGen
}
