package main

import (
	"bufio"
	"bytes"
	"fmt"
	"net"
	"net/url"
	"strconv"
	"time"
)

// wire is the load's HTTP/1.1 client: one keep-alive connection per worker,
// each request written from a reused buffer, each answer read up to its
// Content-Length and dropped. It is what wrk does: the load shares the
// machine with the server and the database, and net/http's client (two
// goroutines per connection, a parsed header map per answer) spends several
// times more CPU per request than the measured server gives it, while
// pgbench's client, on the other side of the ratio, spends almost none.
type wire struct {
	host  string
	conns []*wireConn
}

type wireConn struct {
	c   net.Conn
	r   *bufio.Reader
	buf []byte
}

func newWire(base string, workers int) (*wire, error) {
	u, err := url.Parse(base)
	if err != nil {
		return nil, err
	}
	w := &wire{host: u.Host, conns: make([]*wireConn, workers)}
	for i := range w.conns {
		w.conns[i] = &wireConn{}
	}
	return w, nil
}

func (w *wire) close() {
	for _, c := range w.conns {
		c.reset()
	}
}

// get sends GET path with the bearer token on worker's connection.
func (w *wire) get(worker int, path, token string) (int, error) {
	c := w.conns[worker]
	b := append(w.head(c.buf[:0], "GET", path, token), "\r\n"...)
	c.buf = b
	return c.roundTrip(w.host, b)
}

// post sends POST path with a JSON body and a fresh Idempotency-Key.
func (w *wire) post(worker int, path, token string, body []byte) (int, error) {
	c := w.conns[worker]
	b := append(w.head(c.buf[:0], "POST", path, token), "Content-Type: application/json\r\nIdempotency-Key: "...)
	b = append(b, newKey()...)
	b = append(b, "\r\nContent-Length: "...)
	b = strconv.AppendInt(b, int64(len(body)), 10)
	b = append(b, "\r\n\r\n"...)
	b = append(b, body...)
	c.buf = b
	return c.roundTrip(w.host, b)
}

// head appends the request line, Host and Authorization, each line ended.
func (w *wire) head(b []byte, method, path, token string) []byte {
	b = append(b, method...)
	b = append(b, ' ')
	b = append(b, path...)
	b = append(b, " HTTP/1.1\r\nHost: "...)
	b = append(b, w.host...)
	b = append(b, "\r\nAuthorization: Bearer "...)
	b = append(b, token...)
	return append(b, "\r\n"...)
}

func (c *wireConn) reset() {
	if c.c != nil {
		c.c.Close()
		c.c = nil
	}
}

// roundTrip writes req and reads the answer's status line, headers and
// body; a failed exchange drops the connection (the next one dials again).
func (c *wireConn) roundTrip(host string, req []byte) (status int, err error) {
	if c.c == nil {
		conn, err := net.DialTimeout("tcp", host, 5*time.Second)
		if err != nil {
			return 0, err
		}
		c.c, c.r = conn, bufio.NewReaderSize(conn, 64<<10)
	}
	defer func() {
		if err != nil {
			c.reset()
		}
	}()
	if err := c.c.SetDeadline(time.Now().Add(30 * time.Second)); err != nil {
		return 0, err
	}
	if _, err := c.c.Write(req); err != nil {
		return 0, err
	}
	line, err := c.r.ReadSlice('\n')
	if err != nil {
		return 0, err
	}
	if len(line) < 12 || !bytes.HasPrefix(line, []byte("HTTP/1.1 ")) {
		return 0, fmt.Errorf("not an HTTP/1.1 status line: %q", line)
	}
	if status, err = strconv.Atoi(string(line[9:12])); err != nil {
		return 0, fmt.Errorf("status line %q: %w", line, err)
	}
	length, closing := -1, false
	for {
		line, err := c.r.ReadSlice('\n')
		if err != nil {
			return 0, err
		}
		line = bytes.TrimRight(line, "\r\n")
		if len(line) == 0 {
			break
		}
		name, value, ok := bytes.Cut(line, []byte(":"))
		if !ok {
			continue
		}
		value = bytes.TrimSpace(value)
		switch {
		case bytes.EqualFold(name, []byte("Content-Length")):
			if length, err = strconv.Atoi(string(value)); err != nil {
				return 0, fmt.Errorf("content-length %q: %w", value, err)
			}
		case bytes.EqualFold(name, []byte("Transfer-Encoding")):
			return 0, fmt.Errorf("unsupported transfer-encoding %q", value)
		case bytes.EqualFold(name, []byte("Connection")) && bytes.EqualFold(value, []byte("close")):
			closing = true
		}
	}
	if length < 0 {
		return 0, fmt.Errorf("answer without Content-Length")
	}
	if _, err := c.r.Discard(length); err != nil {
		return 0, err
	}
	if closing {
		c.reset()
	}
	return status, nil
}
