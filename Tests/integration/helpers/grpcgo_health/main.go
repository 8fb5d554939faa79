// A grpc-go client (Debian's golang-google-grpc-dev) for the interop tests: it checks a
// server's health over TCP or a unix socket, dialled the way grpc-go users dial a
// dfdaemon's socket (the socket path as target, so the path is sent as :authority).
package main

import (
	"context"
	"fmt"
	"net"
	"os"
	"strings"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/health/grpc_health_v1"
)

func main() {
	if len(os.Args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: grpcgo-health ADDRESS|unix:PATH")
		os.Exit(2)
	}
	target := os.Args[1]
	options := []grpc.DialOption{grpc.WithInsecure(), grpc.WithBlock()}
	if path := strings.TrimPrefix(target, "unix:"); path != target {
		target = path
		options = append(options, grpc.WithContextDialer(func(ctx context.Context, addr string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", addr)
		}))
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := grpc.DialContext(ctx, target, options...)
	if err != nil {
		fmt.Fprintln(os.Stderr, "dial:", err)
		os.Exit(1)
	}
	defer conn.Close()
	reply, err := grpc_health_v1.NewHealthClient(conn).Check(ctx, &grpc_health_v1.HealthCheckRequest{})
	if err != nil {
		fmt.Fprintln(os.Stderr, "check:", err)
		os.Exit(1)
	}
	fmt.Println(reply.GetStatus())
}
