package derp

import "fmt"

// MaxAppNameLen is the longest AppName a client may declare, in bytes.
const MaxAppNameLen = 32

// InvalidAppNameError reports an AppName that ValidAppName refuses. A
// server ends the handshake with it; a Client refuses to send such a name.
type InvalidAppNameError struct {
	Name string
}

// Error quotes at most 40 characters of the name, as the reference's log
// line does.
func (e *InvalidAppNameError) Error() string {
	return fmt.Sprintf("invalid AppName %.40q", e.Name)
}

// ValidAppName reports whether name may be sent as a client's AppName: at
// most MaxAppNameLen bytes, each printable ASCII (0x20 to 0x7e, space
// included). The empty name is valid and means "no name".
func ValidAppName(name string) bool {
	if len(name) > MaxAppNameLen {
		return false
	}
	for i := 0; i < len(name); i++ {
		if name[i] < 0x20 || name[i] > 0x7e {
			return false
		}
	}
	return true
}

// SetDisallowedAppNames makes the server refuse clients that declare one
// of names as their AppName. Mesh peers are exempt. Passing no names lifts
// the restriction. The empty string is a valid entry and refuses clients
// that declare no name at all.
func (s *Server) SetDisallowedAppNames(names []string) {
	set := make(map[string]bool, len(names))
	for _, n := range names {
		set[n] = true
	}
	s.cfgMu.Lock()
	defer s.cfgMu.Unlock()
	s.disallowedApps = set
}

// appNameDisallowed reports whether the server refuses name.
func (s *Server) appNameDisallowed(name string) bool {
	s.cfgMu.RLock()
	defer s.cfgMu.RUnlock()
	return s.disallowedApps[name]
}
