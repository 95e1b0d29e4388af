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
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, o, log.Printf, os.Stderr); err != nil {
		log.Fatal(err)
	}
}
