package main

import (
	"context"
	"flag"
	"fmt"
	"log"
	"os"
	"os/signal"
	"syscall"

	"github.com/openderp/openderp/derp"
)

func main() {
	fs := flag.NewFlagSet(os.Args[0], flag.ExitOnError)
	o := registerFlags(fs, machineDefaults())
	fs.Parse(os.Args[1:])
	fs.Visit(func(f *flag.Flag) {
		if f.Name == "a" {
			o.addrSet = true
		}
	})
	if o.version {
		fmt.Println(derp.Version)
		return
	}
	ls, err := parseLogSettings(o.logFormat, o.logLevel)
	if err != nil {
		log.Fatal(err)
	}
	lg := newLogger(os.Stderr, ls)
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, o, lg); err != nil {
		lg.Error(err.Error())
		os.Exit(1)
	}
}
