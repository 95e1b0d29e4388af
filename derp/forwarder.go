package derp

import (
	"errors"
	"fmt"

	"github.com/openderp/openderp/key"
)

// A PacketForwarder carries packets to clients connected to another server
// of the region, typically a derphttp client connected to that server with
// the mesh key.
type PacketForwarder interface {
	// ForwardPacket sends payload from src to dst. payload is valid only
	// during the call.
	ForwardPacket(src, dst key.NodePublic, payload []byte) error
	String() string
}

// AddPacketForwarder records that dst can be reached through fwd. A local
// connection of dst still takes precedence. When several forwarders are
// added for one key, the first stays in use until it is removed.
func (s *Server) AddPacketForwarder(dst key.NodePublic, fwd PacketForwarder) {
	s.mu.Lock()
	defer s.mu.Unlock()
	prev, ok := s.clientsMesh[dst]
	switch {
	case !ok || prev == nil:
		s.clientsMesh[dst] = fwd
	case prev == fwd:
	default:
		if m, isMulti := prev.(*multiForwarder); isMulti {
			m.add(fwd)
			return
		}
		m := &multiForwarder{ranks: map[PacketForwarder]int{prev: 0}, preferred: prev}
		m.add(fwd)
		s.clientsMesh[dst] = m
		s.metrics.multiForwarderCreated.Add(1)
	}
}

// RemovePacketForwarder undoes AddPacketForwarder(dst, fwd). If dst is
// then reachable neither locally nor through another forwarder, clients
// that have received packets from dst are told it is gone.
func (s *Server) RemovePacketForwarder(dst key.NodePublic, fwd PacketForwarder) {
	s.mu.Lock()
	defer s.mu.Unlock()
	prev, ok := s.clientsMesh[dst]
	if !ok {
		return
	}
	if m, isMulti := prev.(*multiForwarder); isMulti {
		if last := m.remove(fwd); last != nil {
			s.clientsMesh[dst] = last
			s.metrics.multiForwarderDeleted.Add(1)
		}
		return
	}
	if prev != fwd {
		s.metrics.forwarderDeleteOtherVal.Add(1)
		return
	}
	if set := s.clients[dst]; set != nil && set.len() > 0 {
		s.clientsMesh[dst] = nil
		return
	}
	delete(s.clientsMesh, dst)
	s.peerGoneFromRegionLocked(dst)
}

// multiForwarder is the forwarder of a key reachable through several mesh
// peers. It uses one of them, the one added first among those remaining;
// it does not balance load or fail over on error. Guarded by Server.mu;
// routePacket resolves the preferred member under that lock rather than
// calling ForwardPacket.
type multiForwarder struct {
	ranks     map[PacketForwarder]int
	preferred PacketForwarder
	next      int
}

func (m *multiForwarder) add(f PacketForwarder) {
	if _, ok := m.ranks[f]; ok {
		return
	}
	for _, r := range m.ranks {
		m.next = max(m.next, r)
	}
	m.next++
	m.ranks[f] = m.next
}

// remove deletes f. If one forwarder remains it returns it, so the caller
// can replace m by it.
func (m *multiForwarder) remove(f PacketForwarder) PacketForwarder {
	if _, ok := m.ranks[f]; !ok {
		return nil
	}
	delete(m.ranks, f)
	if m.preferred == f {
		m.preferred = nil
		best := 0
		for g, r := range m.ranks {
			if m.preferred == nil || r < best {
				m.preferred, best = g, r
			}
		}
	}
	if len(m.ranks) == 1 {
		for g := range m.ranks {
			return g
		}
	}
	return nil
}

// errMultiForwarder is returned if a multiForwarder is ever used as a
// forwarder itself.
var errMultiForwarder = errors.New("derp: internal error: multiForwarder used directly")

// ForwardPacket only satisfies PacketForwarder, so that a multiForwarder
// can sit in Server.clientsMesh. It is never called: routePacket resolves
// the preferred member under Server.mu and calls that. Reading m here,
// without the lock, would race with AddPacketForwarder.
func (m *multiForwarder) ForwardPacket(src, dst key.NodePublic, payload []byte) error {
	return errMultiForwarder
}

func (m *multiForwarder) String() string {
	return fmt.Sprintf("multiForwarder{preferred: %v, %d total}", m.preferred, len(m.ranks))
}
