//go:build !ts_debug_websockets

package latest

const wsClientCompiled = false
