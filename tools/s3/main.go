// g8s-s3: an S3-compatible object store in memory on loopback, for the tests of g8s's s3://
// backend (the Pulumi CLI's DIY backend on gocloud's S3 driver) and of the etcd snapshots'
// copies (g8s-object-store on a master). It serves one bucket, made at start, prints its URL on
// the first line of stdout, and stops on SIGTERM or SIGINT. With --access-key-id (the secret key
// in G8S_S3_SECRET_ACCESS_KEY, never on the command line) it checks every request's Signature
// Version 4. Nothing is kept: the store lives as long as the process.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/johannesboyne/gofakes3"
	"github.com/johannesboyne/gofakes3/backend/s3mem"
)

func main() {
	listen := flag.String("listen", "127.0.0.1:0", "address to listen on (loopback only)")
	bucket := flag.String("bucket", "state", "the bucket to create")
	accessKeyID := flag.String("access-key-id", "", "check every request's SigV4 signature for this key (secret: $G8S_S3_SECRET_ACCESS_KEY)")
	flag.Parse()
	secret := os.Getenv("G8S_S3_SECRET_ACCESS_KEY")
	if (*accessKeyID == "") != (secret == "") {
		fmt.Fprintln(os.Stderr, "g8s-s3: give --access-key-id and G8S_S3_SECRET_ACCESS_KEY together, or neither")
		os.Exit(2)
	}
	host, _, err := net.SplitHostPort(*listen)
	if err != nil || !net.ParseIP(host).IsLoopback() {
		fmt.Fprintf(os.Stderr, "g8s-s3: --listen %q: give a loopback address and port, such as 127.0.0.1:0\n", *listen)
		os.Exit(2)
	}
	store := s3mem.New()
	if err := store.CreateBucket(*bucket); err != nil {
		fmt.Fprintf(os.Stderr, "g8s-s3: create bucket %q: %v\n", *bucket, err)
		os.Exit(1)
	}
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		fmt.Fprintf(os.Stderr, "g8s-s3: %v\n", err)
		os.Exit(1)
	}
	var handler http.Handler = gofakes3.New(store).Server()
	if *accessKeyID != "" {
		handler = newSigv4Check(*accessKeyID, secret, handler)
	}
	server := &http.Server{Handler: handler, ReadHeaderTimeout: 10 * time.Second}
	fmt.Printf("http://%s\n", ln.Addr())
	stop := make(chan os.Signal, 1)
	signal.Notify(stop, syscall.SIGTERM, syscall.SIGINT)
	go func() {
		<-stop
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = server.Shutdown(ctx)
	}()
	if err := server.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
		fmt.Fprintf(os.Stderr, "g8s-s3: %v\n", err)
		os.Exit(1)
	}
}
