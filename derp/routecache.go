package derp

import "github.com/openderp/openderp/key"

// routeCacheSize is how many destinations each sending connection
// remembers; a power of two.
const routeCacheSize = 8

// routeCache remembers the client sets of a connection's recent
// destinations, so that relaying to a local client takes no server-wide
// lock: the set's route pointer is read atomically. A set that has left
// the server has a nil route, which sends the lookup back to Server.mu and
// refreshes the entry. Owned by the connection's read loop; allocated on
// its first packet, so idle connections do not pay for it.
type routeCache struct {
	c *routeEntries
}

type routeEntries [routeCacheSize]struct {
	key key.NodePublic
	set *clientSet
}

func routeSlot(k key.NodePublic) int {
	b := k.Raw32() // keys are curve points: any byte is as good as another
	return int(b[31]) & (routeCacheSize - 1)
}

// lookup returns the connection that should receive packets for k if it
// is cached and current, else nil.
func (rc *routeCache) lookup(k key.NodePublic) *sclient {
	if rc.c == nil {
		return nil
	}
	e := &rc.c[routeSlot(k)]
	if e.set == nil || e.key != k {
		return nil
	}
	return e.set.route.Load()
}

// remember caches set as the client set of k.
func (rc *routeCache) remember(k key.NodePublic, set *clientSet) {
	if rc.c == nil {
		rc.c = new(routeEntries)
	}
	e := &rc.c[routeSlot(k)]
	e.key, e.set = k, set
}
