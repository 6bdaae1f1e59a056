// Command bareproxy is the load harness's yardstick: an
// httputil.ReverseProxy with a tuned transport and nothing else, the ceiling
// any Go proxy reaches on the machine. Portero's rows are reported as ratios
// to it. It lives under testdata so `go build ./...` and `go vet ./...` leave
// it alone; the harness builds it by path.
//
//	bareproxy -listen 127.0.0.1:0 -upstream http://127.0.0.1:8000
//
// Once listening it logs `addr=HOST:PORT` to stderr.
package main

import (
	"flag"
	"fmt"
	"log"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"sync"
	"time"
)

func main() {
	listen := flag.String("listen", "127.0.0.1:0", "address to listen on")
	upstream := flag.String("upstream", "http://127.0.0.1:8000", "upstream base URL")
	flag.Parse()
	u, err := url.Parse(*upstream)
	if err != nil {
		log.Fatalf("bareproxy: -upstream: %v", err)
	}
	// The tuning that matters: enough idle connections per host that 50
	// (or 1,000) clients never wait for a dial. Go's default keeps 2.
	tr := &http.Transport{
		Proxy:               nil,
		DialContext:         (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		MaxIdleConns:        1024,
		MaxIdleConnsPerHost: 1024,
		IdleConnTimeout:     90 * time.Second,
		ForceAttemptHTTP2:   false,
		DisableCompression:  true,
	}
	rp := &httputil.ReverseProxy{
		Rewrite:   func(pr *httputil.ProxyRequest) { pr.SetURL(u); pr.SetXForwarded() },
		Transport: tr,
		// Without a pool ReverseProxy allocates a 32 KiB copy buffer per
		// response, which at these rates is most of the garbage collector's
		// work; Portero pools them, and so must the ceiling.
		BufferPool: &bufferPool{pool: sync.Pool{New: func() any { b := make([]byte, 32<<10); return &b }}},
	}
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		log.Fatalf("bareproxy: %v", err)
	}
	fmt.Fprintf(os.Stderr, "msg=listening addr=%s\n", ln.Addr())
	srv := &http.Server{Handler: rp, ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 2 * time.Minute}
	log.Fatal(srv.Serve(ln))
}

// bufferPool reuses ReverseProxy's copy buffers.
type bufferPool struct{ pool sync.Pool }

func (p *bufferPool) Get() []byte  { return *(p.pool.Get().(*[]byte)) }
func (p *bufferPool) Put(b []byte) { p.pool.Put(&b) }
