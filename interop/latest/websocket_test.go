package latest

import "testing"

// requireWebSocketClient skips t when the reference's WebSocket client is
// not compiled in.
func requireWebSocketClient(t *testing.T) {
	t.Helper()
	if !wsClientCompiled {
		t.Skip("the reference's DERP WebSocket client needs -tags ts_debug_websockets")
	}
}
