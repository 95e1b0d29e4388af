//go:build ts_debug_websockets

package latest

// wsClientCompiled reports whether the reference's derphttp WebSocket
// client is in this build: since v1.80 or so only with the build tag
// ts_debug_websockets, which scripts/test.sh sets.
const wsClientCompiled = true
