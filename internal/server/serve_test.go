package server_test

import (
	"context"
	"crypto/rand"
	"io"
	"log/slog"
	"net"
	"path/filepath"
	"testing"
	"time"

	"github.com/nitronet/nitronet/internal/config"
	"github.com/nitronet/nitronet/internal/server"
)

// TestServeReturnsOnListenerError: when serving fails before ctx ends
// (here, a listener that is already closed), Serve returns the error
// instead of waiting forever for the housekeeping jobs, which run until
// their context ends.
func TestServeReturnsOnListenerError(t *testing.T) {
	cfg := config.Default()
	cfg.DataDir = filepath.Join(t.TempDir(), "data")
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	srv, err := server.New(context.Background(), cfg, server.Deps{
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), Clock: time.Now, Rand: rand.Reader, Stdout: io.Discard,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ln.Close()

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx, ln) }()
	select {
	case err := <-done:
		if err == nil {
			t.Fatal("Serve on a closed listener: got nil error, want one")
		}
	case <-time.After(10 * time.Second):
		cancel()
		<-done
		t.Fatal("Serve on a closed listener did not return until its context was cancelled")
	}
}
