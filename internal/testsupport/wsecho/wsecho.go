// Package wsecho is a minimal RFC 6455 WebSocket echo server and client, for
// tests that need a real WebSocket through the broker's reverse proxy
// without a WebSocket module. The server answers the opening handshake,
// sends first a [Hello] (the path and headers of the upgrade request it
// received) and then echoes every text or binary message. The client opens
// the handshake with an http.RoundTripper, so TLS and the caller's cookies
// apply as to any request.
//
// TEST-ONLY: no extensions, no subprotocols, no fragmented messages, and
// messages of at most 1 MiB.
package wsecho

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha1"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"
)

// Hello is the first message the server sends: what the upgrade request
// that reached it carried.
type Hello struct {
	Path   string      `json:"path"`
	Header http.Header `json:"header"`
}

// Opcodes (RFC 6455 section 5.2).
const (
	opText   = 0x1
	opBinary = 0x2
	opClose  = 0x8
	opPing   = 0x9
	opPong   = 0xA
)

// maxPayload bounds one message.
const maxPayload = 1 << 20

// connTimeout bounds a server-side connection's whole life.
const connTimeout = 30 * time.Second

// Handler returns the echo server. A request that is not a WebSocket
// opening handshake gets 400.
func Handler() http.Handler { return http.HandlerFunc(serve) }

func serve(w http.ResponseWriter, r *http.Request) {
	key := r.Header.Get("Sec-WebSocket-Key")
	if r.Method != http.MethodGet || !hasToken(r.Header, "Connection", "upgrade") ||
		!strings.EqualFold(r.Header.Get("Upgrade"), "websocket") || r.Header.Get("Sec-WebSocket-Version") != "13" || key == "" {
		http.Error(w, "wsecho: not a WebSocket opening handshake", http.StatusBadRequest)
		return
	}
	conn, brw, err := http.NewResponseController(w).Hijack()
	if err != nil {
		http.Error(w, "wsecho: "+err.Error(), http.StatusInternalServerError)
		return
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(connTimeout))
	fmt.Fprintf(brw, "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: %s\r\n\r\n", acceptKey(key))
	hello, _ := json.Marshal(Hello{Path: r.URL.Path, Header: r.Header})
	if writeFrame(brw, opText, hello, false) != nil || brw.Flush() != nil {
		return
	}
	for {
		op, payload, err := readFrame(brw.Reader, true)
		if err != nil {
			return
		}
		switch op {
		case opText, opBinary:
			err = writeFrame(brw, op, payload, false)
		case opPing:
			err = writeFrame(brw, opPong, payload, false)
		case opClose:
			_ = writeFrame(brw, opClose, payload[:min(len(payload), 2)], false)
			_ = brw.Flush()
			return
		}
		if err != nil || brw.Flush() != nil {
			return
		}
	}
}

// Conn is the client side of a WebSocket.
type Conn struct {
	rwc  io.ReadWriteCloser
	br   *bufio.Reader
	stop func() bool
}

// Dial opens a WebSocket at rawURL (http or https) through rt (nil:
// http.DefaultTransport), with the cookies jar holds for the URL (jar may
// be nil) and header added to the handshake. ctx bounds the connection's
// whole life: when it ends, the connection is closed.
//
// When the server does not switch protocols, Dial returns its response,
// with the body read (at most 64 KiB) and replayable, and an error.
func Dial(ctx context.Context, rt http.RoundTripper, jar http.CookieJar, rawURL string, header http.Header) (*Conn, *http.Response, error) {
	if rt == nil {
		rt = http.DefaultTransport
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, rawURL, nil)
	if err != nil {
		return nil, nil, err
	}
	for name, values := range header {
		req.Header[name] = values
	}
	if jar != nil {
		for _, c := range jar.Cookies(req.URL) {
			req.AddCookie(c)
		}
	}
	var nonce [16]byte
	_, _ = rand.Read(nonce[:])
	key := base64.StdEncoding.EncodeToString(nonce[:])
	req.Header.Set("Connection", "Upgrade")
	req.Header.Set("Upgrade", "websocket")
	req.Header.Set("Sec-WebSocket-Version", "13")
	req.Header.Set("Sec-WebSocket-Key", key)
	resp, err := rt.RoundTrip(req)
	if err != nil {
		return nil, nil, fmt.Errorf("wsecho: handshake: %w", err)
	}
	if jar != nil {
		jar.SetCookies(req.URL, resp.Cookies())
	}
	if resp.StatusCode != http.StatusSwitchingProtocols {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
		resp.Body.Close()
		resp.Body = io.NopCloser(bytes.NewReader(b))
		return nil, resp, fmt.Errorf("wsecho: handshake: status %d, want 101", resp.StatusCode)
	}
	rwc, ok := resp.Body.(io.ReadWriteCloser)
	if !ok {
		resp.Body.Close()
		return nil, resp, errors.New("wsecho: handshake: the transport gave no writable body for 101")
	}
	if got := resp.Header.Get("Sec-WebSocket-Accept"); got != acceptKey(key) || !strings.EqualFold(resp.Header.Get("Upgrade"), "websocket") {
		rwc.Close()
		return nil, resp, fmt.Errorf("wsecho: handshake: Upgrade %q, Sec-WebSocket-Accept %q", resp.Header.Get("Upgrade"), got)
	}
	c := &Conn{rwc: rwc, br: bufio.NewReader(rwc)}
	c.stop = context.AfterFunc(ctx, func() { rwc.Close() })
	return c, resp, nil
}

// Hello reads the server's first message.
func (c *Conn) Hello() (Hello, error) {
	var h Hello
	msg, err := c.ReadText()
	if err != nil {
		return h, err
	}
	return h, json.Unmarshal([]byte(msg), &h)
}

// WriteText sends a text message.
func (c *Conn) WriteText(s string) error { return writeFrame(c.rwc, opText, []byte(s), true) }

// ReadText reads the next text message.
func (c *Conn) ReadText() (string, error) {
	op, payload, err := readFrame(c.br, false)
	if err != nil {
		return "", err
	}
	if op != opText {
		return "", fmt.Errorf("wsecho: got opcode %#x, want a text message", op)
	}
	return string(payload), nil
}

// Close sends a close frame (normal closure), waits briefly for the
// server's, and closes the connection.
func (c *Conn) Close() error {
	c.stop()
	err := writeFrame(c.rwc, opClose, []byte{0x03, 0xE8}, true)
	if err == nil {
		done := make(chan struct{})
		go func() {
			defer close(done)
			for {
				if op, _, err := readFrame(c.br, false); err != nil || op == opClose {
					return
				}
			}
		}()
		select {
		case <-done:
		case <-time.After(2 * time.Second):
		}
	}
	return errors.Join(err, c.rwc.Close())
}

// acceptKey is the server's proof that it read the handshake (section 4.2.2).
func acceptKey(key string) string {
	h := sha1.Sum([]byte(key + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"))
	return base64.StdEncoding.EncodeToString(h[:])
}

// hasToken reports whether a comma-separated header lists token.
func hasToken(h http.Header, name, token string) bool {
	for _, v := range h.Values(name) {
		for t := range strings.SplitSeq(v, ",") {
			if strings.EqualFold(strings.TrimSpace(t), token) {
				return true
			}
		}
	}
	return false
}

// writeFrame writes one final frame; clients mask, servers do not.
func writeFrame(w io.Writer, op byte, payload []byte, mask bool) error {
	hdr := []byte{0x80 | op}
	var m byte
	if mask {
		m = 0x80
	}
	switch n := len(payload); {
	case n < 126:
		hdr = append(hdr, m|byte(n))
	case n <= 0xFFFF:
		hdr = binary.BigEndian.AppendUint16(append(hdr, m|126), uint16(n))
	default:
		hdr = binary.BigEndian.AppendUint64(append(hdr, m|127), uint64(n))
	}
	data := payload
	if mask {
		var key [4]byte
		_, _ = rand.Read(key[:])
		hdr = append(hdr, key[:]...)
		data = make([]byte, len(payload))
		for i, b := range payload {
			data[i] = b ^ key[i%4]
		}
	}
	_, err := w.Write(append(hdr, data...))
	return err
}

// readFrame reads one frame, which must be final and masked as the side
// that sent it must (clients mask, servers do not).
func readFrame(r *bufio.Reader, masked bool) (byte, []byte, error) {
	var h [2]byte
	if _, err := io.ReadFull(r, h[:]); err != nil {
		return 0, nil, err
	}
	if h[0]&0x80 == 0 || h[0]&0x70 != 0 {
		return 0, nil, errors.New("wsecho: fragmented frame or reserved bits set")
	}
	if (h[1]&0x80 != 0) != masked {
		return 0, nil, fmt.Errorf("wsecho: frame masked %v, want %v", h[1]&0x80 != 0, masked)
	}
	n := uint64(h[1] & 0x7F)
	switch n {
	case 126:
		var b [2]byte
		if _, err := io.ReadFull(r, b[:]); err != nil {
			return 0, nil, err
		}
		n = uint64(binary.BigEndian.Uint16(b[:]))
	case 127:
		var b [8]byte
		if _, err := io.ReadFull(r, b[:]); err != nil {
			return 0, nil, err
		}
		n = binary.BigEndian.Uint64(b[:])
	}
	if n > maxPayload {
		return 0, nil, fmt.Errorf("wsecho: a frame of %d bytes", n)
	}
	var key [4]byte
	if masked {
		if _, err := io.ReadFull(r, key[:]); err != nil {
			return 0, nil, err
		}
	}
	payload := make([]byte, n)
	if _, err := io.ReadFull(r, payload); err != nil {
		return 0, nil, err
	}
	if masked {
		for i := range payload {
			payload[i] ^= key[i%4]
		}
	}
	return h[0] & 0x0F, payload, nil
}
