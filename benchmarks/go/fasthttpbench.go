// fasthttpbench: Go's fasthttp as a peer in the benchmark suite (benchmarks/gopeer.py).
//
//	fasthttpbench server [-tls-dir DIR] [-cpu N]   the suite's routes on 127.0.0.1,
//	                                                prints "PORT <port> [<tls port>]"
//	fasthttpbench client                            one worker: a JSON spec on stdin
//	                                                (as benchmarks/worker.py takes),
//	                                                one JSON result line on stdout
//
// Built in GOPATH mode against Debian's golang-github-valyala-fasthttp-dev: no
// module download. The client is fasthttp.Client with MaxConnsPerHost = the
// concurrency, c goroutines in a closed loop, each response checked (status 200,
// the route's body length), the same warm-up and window rules as closedloop.py.
package main

import (
	"bufio"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"math"
	"net"
	"os"
	"runtime"
	"sort"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
	"unsafe"

	"github.com/valyala/fasthttp"
)

// The routes' bodies: byte for byte those of benchmarks/routes.py.
func smallBody() []byte {
	b := []byte("aiofasthttp benchmark, a small response: ")
	for i := 0; i < 58; i++ {
		b = append(b, 's')
	}
	return append(b, '\n')
}

func bigBody() []byte {
	b := make([]byte, 0, 65536)
	for i := 0; i < 256; i++ {
		for j := 0; j < 256; j++ {
			b = append(b, byte(j))
		}
	}
	return b
}

func pin(cpu int) {
	if cpu < 0 {
		return
	}
	var mask [16]uint64
	mask[cpu/64] |= 1 << (uint(cpu) % 64)
	// Pin every thread there is (a thread made later inherits its maker's mask), and
	// run Go code on one thread at a time, as the Python clients do.
	tasks, _ := os.ReadDir("/proc/self/task")
	for _, t := range tasks {
		var tid int
		fmt.Sscanf(t.Name(), "%d", &tid)
		syscall.RawSyscall(syscall.SYS_SCHED_SETAFFINITY, uintptr(tid), unsafe.Sizeof(mask), uintptr(unsafe.Pointer(&mask[0])))
	}
	runtime.GOMAXPROCS(1)
}

// -- the server ----------------------------------------------------------------------

func serve(args []string) {
	tlsDir, cpu := "", -1
	for i := 0; i+1 < len(args); i += 2 {
		switch args[i] {
		case "-tls-dir":
			tlsDir = args[i+1]
		case "-cpu":
			fmt.Sscanf(args[i+1], "%d", &cpu)
		}
	}
	pin(cpu)
	small, big := smallBody(), bigBody()
	chunk := make([]byte, 1024)
	for i := range chunk {
		chunk[i] = 'c'
	}
	chunk[1023] = '\n'
	handler := func(ctx *fasthttp.RequestCtx) {
		ctx.Response.Header.Set("Server", "bench")
		switch string(ctx.Path()) {
		case "/small":
			ctx.SetContentType("text/plain")
			ctx.SetBody(small)
		case "/64k":
			ctx.SetContentType("application/octet-stream")
			ctx.SetBody(big)
		case "/chunked":
			ctx.SetContentType("text/plain")
			ctx.SetBodyStreamWriter(func(w *bufio.Writer) {
				for i := 0; i < 8; i++ {
					w.Write(chunk)
					w.Flush()
				}
			})
		case "/post":
			if !ctx.IsPost() {
				ctx.SetStatusCode(404)
			} else if len(ctx.PostBody()) != 4096 {
				ctx.SetStatusCode(400)
			} else {
				ctx.SetContentType("text/plain")
				ctx.SetBody(small)
			}
		default:
			ctx.SetStatusCode(404)
		}
	}
	server := &fasthttp.Server{Handler: handler, Name: "bench", Concurrency: 1 << 20}
	plain, err := listen(server, "")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	ports := fmt.Sprintf("PORT %d", plain)
	if tlsDir != "" {
		tlsPort, err := listen(server, tlsDir)
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		ports += fmt.Sprintf(" %d", tlsPort)
	}
	fmt.Println(ports)
	// The parent stops us by closing stdin (testkit.ServerProcess), then SIGTERM.
	buf := make([]byte, 64)
	for {
		if _, err := os.Stdin.Read(buf); err != nil {
			os.Exit(0)
		}
	}
}

func listen(server *fasthttp.Server, tlsDir string) (int, error) {
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	p := ln.Addr().(*net.TCPAddr).Port
	if tlsDir == "" {
		go server.Serve(ln)
	} else {
		go server.ServeTLS(ln, tlsDir+"/server.pem", tlsDir+"/server.key")
	}
	return p, nil
}

// -- the client ----------------------------------------------------------------------

type spec struct {
	BaseURL    string      `json:"base_url"`
	Path       string      `json:"path"`
	Method     string      `json:"method"`
	BodyLen    int         `json:"body_len"`
	Expect     int         `json:"expect"`
	Conc       int         `json:"concurrency"`
	Warmup     json.Number `json:"warmup"` // responses (closed), seconds (rate)
	WarmupCap  float64     `json:"warmup_cap"`
	WarmupHard float64     `json:"warmup_hard"`
	Requests   int         `json:"requests"`
	Cap        float64     `json:"cap"`
	MinSamples int         `json:"min_samples"`
	SlowCap    float64     `json:"slow_cap"`
	CAFile     *string     `json:"ca_file"`
	CPU        *int        `json:"cpu"`
	Mode       string      `json:"mode"`
	Rate       float64     `json:"rate"`
	Seconds    float64     `json:"seconds"`
}

type sample struct{ end, latency float64 }

type slot struct {
	mu      sync.Mutex
	samples []sample
	errors  []float64
	kinds   map[string]int
}

func percentile(sorted []float64, q float64) interface{} {
	if len(sorted) == 0 {
		return nil
	}
	i := int(math.Ceil(q*float64(len(sorted)))) - 1
	if i < 0 {
		i = 0
	}
	if i >= len(sorted) {
		i = len(sorted) - 1
	}
	return sorted[i] * 1e3
}

func newClient(s *spec) *fasthttp.Client {
	c := &fasthttp.Client{MaxConnsPerHost: s.Conc, ReadTimeout: 30 * time.Second}
	if s.CAFile != nil {
		pem, err := os.ReadFile(*s.CAFile)
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(2)
		}
		roots := x509.NewCertPool()
		roots.AppendCertsFromPEM(pem)
		c.TLSConfig = &tls.Config{RootCAs: roots}
	}
	return c
}

// fixedRate is closedloop.fixed_rate: request k is due at start + k/rate and sent by
// goroutine k mod c (at once if late); its latency runs from when it was due.
func fixedRate(c *fasthttp.Client, s *spec) {
	warmup, _ := s.Warmup.Float64()
	due := int(math.Round(s.Rate * (warmup + s.Seconds)))
	recordFrom := int(math.Round(s.Rate * warmup))
	start := time.Now().Add(10 * time.Millisecond)
	url := s.BaseURL + s.Path
	var mu sync.Mutex
	var lat []float64
	errors, late := 0, 0
	kinds := map[string]int{}
	var wg sync.WaitGroup
	for i := 0; i < s.Conc; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			req, resp := fasthttp.AcquireRequest(), fasthttp.AcquireResponse()
			req.SetRequestURI(url)
			req.Header.SetMethod(s.Method)
			for k := i; k < due; k += s.Conc {
				at := start.Add(time.Duration(float64(k) / s.Rate * 1e9))
				wait := time.Until(at)
				if wait > 0 {
					time.Sleep(wait)
				}
				err := c.Do(req, resp)
				took := time.Since(at).Seconds()
				mu.Lock()
				if k >= recordFrom && wait < -time.Millisecond {
					late++
				}
				if err != nil {
					errors++
					kinds["fasthttp: "+err.Error()]++
				} else if resp.StatusCode() != 200 || len(resp.Body()) != s.Expect {
					errors++
					kinds[fmt.Sprintf("wrong response: status %d", resp.StatusCode())]++
				} else if k >= recordFrom {
					lat = append(lat, took)
				}
				mu.Unlock()
			}
		}(i)
	}
	wg.Wait()
	elapsed := time.Since(start).Seconds() - warmup
	sort.Float64s(lat)
	var worst interface{}
	if len(lat) > 0 {
		worst = lat[len(lat)-1] * 1e3
	}
	out := map[string]interface{}{
		"run": map[string]interface{}{
			"ok": len(lat), "errors": errors, "due": due - recordFrom, "rate": s.Rate,
			"rps": float64(len(lat)) / elapsed, "sent_late": late, "elapsed": elapsed,
			"capped": false, "p50_ms": percentile(lat, 0.5), "p99_ms": percentile(lat, 0.99),
			"p999_ms": percentile(lat, 0.999), "max_ms": worst, "cut": 0, "stuck": 0, "hung": 0,
		},
		"error_kinds": kinds,
		"extra":       map[string]interface{}{"fasthttp": "Go " + runtime.Version()},
	}
	line, _ := json.Marshal(out)
	os.Stdout.Write(append(line, '\n'))
	os.Exit(0)
}

func client() {
	var s spec
	if err := json.NewDecoder(os.Stdin).Decode(&s); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	if s.CPU != nil {
		pin(*s.CPU)
	}
	c := newClient(&s)
	if s.Mode == "rate" {
		fixedRate(c, &s)
	}
	warmupCount, _ := s.Warmup.Int64()
	url := s.BaseURL + s.Path
	body := make([]byte, s.BodyLen)
	for i := range body {
		body[i] = 'p'
	}
	began := time.Now()
	clock := func() float64 { return time.Since(began).Seconds() }
	var stopping int32
	var good, warmSlots int64
	slots := make([]*slot, s.Conc)
	inFlight := make([]int64, s.Conc) // start time in ns since began, 0: none
	var wg sync.WaitGroup
	for i := 0; i < s.Conc; i++ {
		slots[i] = &slot{kinds: map[string]int{}}
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			me := slots[i]
			req, resp := fasthttp.AcquireRequest(), fasthttp.AcquireResponse()
			req.SetRequestURI(url)
			req.Header.SetMethod(s.Method)
			if s.BodyLen > 0 {
				req.SetBody(body)
			}
			cold := true
			for atomic.LoadInt32(&stopping) == 0 {
				start := clock()
				atomic.StoreInt64(&inFlight[i], int64(start*1e9)+1)
				err := c.Do(req, resp)
				atomic.StoreInt64(&inFlight[i], 0)
				end := clock()
				me.mu.Lock()
				if err != nil {
					me.errors = append(me.errors, end)
					me.kinds["fasthttp: "+err.Error()]++
				} else if resp.StatusCode() != 200 || len(resp.Body()) != s.Expect {
					me.errors = append(me.errors, end)
					me.kinds[fmt.Sprintf("wrong response: status %d, %d body bytes", resp.StatusCode(), len(resp.Body()))]++
				} else {
					me.samples = append(me.samples, sample{end, end - start})
					atomic.AddInt64(&good, 1)
					if cold {
						cold = false
						atomic.AddInt64(&warmSlots, 1)
					}
				}
				me.mu.Unlock()
			}
		}(i)
	}
	poll := 5 * time.Millisecond
	for {
		t, n := clock(), atomic.LoadInt64(&good)
		everyone := atomic.LoadInt64(&warmSlots) >= int64(s.Conc)
		if (everyone && (n >= warmupCount || t >= s.WarmupCap)) || t >= s.WarmupHard {
			break
		}
		time.Sleep(poll)
	}
	windowStart, first := clock(), atomic.LoadInt64(&good)
	for {
		t, n := clock()-windowStart, atomic.LoadInt64(&good)-first
		if n >= int64(s.Requests) || (t >= s.Cap && n >= int64(s.MinSamples)) || t >= s.SlowCap {
			break
		}
		time.Sleep(poll)
	}
	windowEnd := clock()
	atomic.StoreInt32(&stopping, 1)
	cut := 0
	for i := range inFlight {
		if atomic.LoadInt64(&inFlight[i]) != 0 {
			cut++
		}
	}
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	hung := 0
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		hung = cut
	}
	var lat []float64
	warmupErrors, errors := 0, 0
	kinds := map[string]int{}
	for _, me := range slots {
		me.mu.Lock()
		for _, x := range me.samples {
			if x.end > windowStart && x.end <= windowEnd {
				lat = append(lat, x.latency)
			}
		}
		for _, e := range me.errors {
			if e <= windowStart {
				warmupErrors++
			} else if e <= windowEnd {
				errors++
			}
		}
		for k, v := range me.kinds {
			kinds[k] += v
		}
		me.mu.Unlock()
	}
	sort.Float64s(lat)
	elapsed := windowEnd - windowStart
	out := map[string]interface{}{
		"warmup": map[string]interface{}{"ok": first, "elapsed": windowStart, "errors": warmupErrors},
		"run": map[string]interface{}{
			"ok": len(lat), "errors": errors, "elapsed": elapsed,
			"rps":    float64(len(lat)) / elapsed,
			"p50_ms": percentile(lat, 0.5), "p99_ms": percentile(lat, 0.99),
			"capped": len(lat) < s.Requests, "cut": cut, "stuck": 0, "hung": hung,
		},
		"error_kinds": kinds,
		"extra":       map[string]interface{}{"fasthttp": "Go " + runtime.Version()},
	}
	line, _ := json.Marshal(out)
	os.Stdout.Write(append(line, '\n'))
	os.Exit(0)
}

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: fasthttpbench server|client")
		os.Exit(2)
	}
	switch os.Args[1] {
	case "server":
		serve(os.Args[2:])
	case "client":
		client()
	default:
		fmt.Fprintln(os.Stderr, "usage: fasthttpbench server|client")
		os.Exit(2)
	}
}
