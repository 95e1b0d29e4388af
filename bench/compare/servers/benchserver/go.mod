module github.com/openderp/openderp/bench/compare/servers/benchserver

go 1.26.0
