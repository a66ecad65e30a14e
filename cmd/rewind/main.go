// Command rewind is the automated canary-analysis and rollback controller.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"github.com/rewind-sre/rewind/cli"
)

func main() {
	os.Exit(run())
}

func run() int {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	return cli.Main(ctx, os.Args[1:], &cli.Env{Stdout: os.Stdout, Stderr: os.Stderr})
}
