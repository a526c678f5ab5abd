// Package hostilebody sends the request bodies an attacker would send to an
// endpoint that reads a form, and counts what the server's handlers read of
// them: a multipart upload with a file part larger than net/http's
// multipart memory (32 MB), with and without a declared length, and an
// urlencoded form over the endpoint's bound, with and without one.
//
// TEST-ONLY.
package hostilebody

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"time"
)

// FilePart is the size of the multipart cases' file part: beyond the 32 MB
// that net/http's FormValue keeps in memory, so a server that parses it
// writes a temporary file.
const FilePart = 40 << 20

// Case is one hostile body.
type Case struct {
	Name        string
	ContentType string
	// Length is the declared Content-Length; -1 sends the body chunked.
	Length int64
	// Multipart: the body must be refused before a byte of it is read.
	Multipart bool
	body      func() io.Reader
}

// Cases are the hostile bodies for an endpoint that reads at most max
// bytes.
func Cases(max int64) []Case {
	const boundary = "hostilebody"
	head := "--" + boundary + "\r\nContent-Disposition: form-data; name=\"csrf\"\r\n\r\nx\r\n" +
		"--" + boundary + "\r\nContent-Disposition: form-data; name=\"file\"; filename=\"big.bin\"\r\n" +
		"Content-Type: application/octet-stream\r\n\r\n"
	tail := "\r\n--" + boundary + "--\r\n"
	multipart := func() io.Reader {
		return io.MultiReader(strings.NewReader(head), io.LimitReader(repeat('a'), FilePart), strings.NewReader(tail))
	}
	mpLen := int64(len(head) + FilePart + len(tail))
	over := 4*max + 1<<20
	form := func() io.Reader {
		return io.MultiReader(strings.NewReader("csrf=x&rd="), io.LimitReader(repeat('a'), over))
	}
	formLen := int64(len("csrf=x&rd=")) + over
	mpType := "multipart/form-data; boundary=" + boundary
	urlencoded := "application/x-www-form-urlencoded"
	return []Case{
		{Name: "multipart with a file part", ContentType: mpType, Length: mpLen, Multipart: true, body: multipart},
		{Name: "multipart with a file part, chunked", ContentType: mpType, Length: -1, Multipart: true, body: multipart},
		{Name: "urlencoded over the bound", ContentType: urlencoded, Length: formLen, body: form},
		{Name: "urlencoded over the bound, chunked", ContentType: urlencoded, Length: -1, body: form},
	}
}

// repeat is an endless reader of c.
type repeat byte

func (r repeat) Read(p []byte) (int, error) {
	for i := range p {
		p[i] = byte(r)
	}
	return len(p), nil
}

// Send sends method target (a path with query) with c's body to the
// server at addr (host:port), on a connection of its own, and returns the
// response's status. It reads the response while the body is still being
// written: a server that refuses early answers before the body is sent, and
// then closes the connection.
func Send(addr, method, target string, header http.Header, c Case) (int, error) {
	conn, err := net.DialTimeout("tcp", addr, 10*time.Second)
	if err != nil {
		return 0, err
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(time.Minute))
	req, err := http.NewRequest(method, "http://"+addr+target, c.body())
	if err != nil {
		return 0, err
	}
	for k, v := range header {
		req.Header[k] = v
	}
	req.Header.Set("Content-Type", c.ContentType)
	req.ContentLength = c.Length
	if c.Length < 0 {
		req.TransferEncoding = []string{"chunked"}
	}
	go func() { _ = req.Write(conn) }() // fails once the server closes; the answer came first
	resp, err := http.ReadResponse(bufio.NewReader(conn), req)
	if err != nil {
		return 0, err
	}
	resp.Body.Close()
	return resp.StatusCode, nil
}

// Counter counts the bytes handlers read from request bodies: Wrap the
// server's handler in it. A read of the server's own (its drain of an
// unread body after the handler returned) is not counted.
type Counter struct{ n atomic.Int64 }

// Wrap returns h with the request bodies counted. Requests must come one
// at a time: each one starts the count anew.
func (c *Counter) Wrap(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c.n.Store(0)
		if r.Body != nil && r.Body != http.NoBody {
			r.Body = &countingBody{ReadCloser: r.Body, n: &c.n}
		}
		h.ServeHTTP(w, r)
	})
}

// Read is the number of bytes the handlers of the last request read.
func (c *Counter) Read() int64 { return c.n.Load() }

type countingBody struct {
	io.ReadCloser
	n *atomic.Int64
}

func (b *countingBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	b.n.Add(int64(n))
	return n, err
}
