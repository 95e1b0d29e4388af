package derphttp

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/openderp/openderp/derp"
)

// A server about to restart sends a Restarting frame advising when to
// reconnect and for how long to keep trying (see derp.Server.Shutdown).
// The client keeps using the connection until the server closes it; the
// next connect then waits for the advised delay plus jitter, so that the
// server's clients do not all come back at once, and retries until the
// advised period is over before failing as usual. A region client retries
// the node that restarted, not the rest of its region, for that period.
// See docs/compat.md#derphttp-restarting.

// Bounds on what a Restarting frame can make the client do, so that a
// hostile or broken server cannot park it for weeks.
const (
	maxRestartDelay  = time.Minute
	maxRestartTryFor = 2 * time.Minute
)

// Retry intervals while a restarting server is not back: the first, the
// largest, each plus up to as much again of jitter.
const (
	restartRetryFirst = 250 * time.Millisecond
	restartRetryMax   = 2 * time.Second
)

// restartPlan is what a Restarting frame asked of the next connect.
type restartPlan struct {
	at    time.Time // reconnect no earlier than this
	until time.Time // retry until this
	node  string    // region clients: the node that is restarting
}

// restartJitter returns the random extra wait after an advised delay d:
// up to a quarter of d plus 250 ms. r is a uniform value in [0, 1).
func restartJitter(d time.Duration, r float64) time.Duration {
	return time.Duration(r * float64(d/4+250*time.Millisecond))
}

// planRestart turns m, received at now, into a restartPlan.
func planRestart(m derp.ServerRestartingMessage, now time.Time, node string, r float64) restartPlan {
	delay := min(max(m.ReconnectIn, 0), maxRestartDelay)
	tryFor := min(max(m.TryFor, 0), maxRestartTryFor)
	at := now.Add(delay + restartJitter(delay, r))
	return restartPlan{at: at, until: at.Add(tryFor), node: node}
}

// noteRestarting records a Restarting frame that arrived on cc, unless
// cc has already been replaced.
func (c *Client) noteRestarting(cc *conn, m derp.ServerRestartingMessage) {
	p := planRestart(m, time.Now(), cc.node, rand.Float64())
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.conn == cc {
		c.restart = p
		c.printf("derphttp: %s is restarting; reconnecting in %v, trying for %v",
			c.target(), time.Until(p.at).Round(time.Millisecond), p.until.Sub(p.at))
	}
}

// restartPending reports whether the next connect follows a Restarting
// frame.
func (c *Client) restartPending() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return !c.restart.at.IsZero()
}

// dialLocked connects, honouring a pending Restarting frame: it waits for
// the advised moment, then dials until a connect succeeds or the advised
// period is over. Each attempt has its own connectTimeout. c.mu must be
// held.
func (c *Client) dialLocked(ctx context.Context) (*conn, *tls.ConnectionState, error) {
	p := c.restart
	c.restart = restartPlan{} // one plan per frame
	if p.at.IsZero() {
		return c.dialAttempt(ctx, "")
	}
	if err := sleepCtx(ctx, time.Until(p.at)); err != nil {
		return nil, nil, err
	}
	wait := restartRetryFirst
	for {
		cc, st, err := c.dialAttempt(ctx, p.node)
		if err == nil || ctx.Err() != nil {
			return cc, st, err
		}
		left := time.Until(p.until)
		if left <= 0 {
			if p.node != "" {
				// The restarting node did not come back in time: on to
				// the rest of the region.
				return c.dialAttempt(ctx, "")
			}
			return nil, nil, err
		}
		d := wait + time.Duration(rand.Int64N(int64(wait)))
		if err := sleepCtx(ctx, min(d, left)); err != nil {
			return nil, nil, err
		}
		wait = min(2*wait, restartRetryMax)
	}
}

// dialAttempt is one connect within connectTimeout; a region client dials
// only the node named only, if not empty and still in the region.
func (c *Client) dialAttempt(ctx context.Context, only string) (*conn, *tls.ConnectionState, error) {
	ctx, cancel := context.WithTimeout(ctx, connectTimeout)
	defer cancel()
	cc, st, err := c.dialDERP(ctx, only)
	if err != nil && ctx.Err() != nil && !errors.Is(err, ctx.Err()) {
		err = fmt.Errorf("%w (%w)", err, ctx.Err())
	}
	return cc, st, err
}

// sleepCtx waits for d or until ctx ends, whichever is first.
func sleepCtx(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
