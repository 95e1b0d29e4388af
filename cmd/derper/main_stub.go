//go:build !derper_wiring

package main

// Until derphttp and stunserver land on main, the daemon's wiring is
// built only with -tags derper_wiring.
func main() {}
