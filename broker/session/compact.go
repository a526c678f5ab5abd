package session

import (
	"bytes"
	"compress/flate"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"hash/crc32"
	"io"
	"maps"
	"strings"
	"sync"
	"time"

	"github.com/oidc-broker/oidc-broker/providers"
)

// The login's tokens are most of a stored session: an RS256 ID token alone
// is about a kilobyte of base64, and gob wrote the Tokens type's name and
// its field names into every session besides. Since this version a session
// keeps them under keyLogin as one []byte (packTokens): the JWTs'
// segments as bytes rather than base64, their JSON deflated against a
// dictionary of the claim names IdPs use, the identity's claims and groups
// referred to. A session after a login at the demo IdP went from 1,678 to
// 1,012 bytes (1,031 once the identity gained AuthnTime and ACR; 955 once
// written without gob's type names, gobwire.go; TestRedisSessionSize).
//
// Rolling deploys and rollbacks: the rest of the session is unchanged (the
// scs gob envelope, the identity under its registered name, as gob's
// decoder reads them), and a []byte
// is one of gob's own types, so a replica of an earlier version decodes a
// packed session: it sees the identity (forward-auth, the app, sign-out
// all work; nobody is signed out) and a key it does not know, which it
// keeps when it writes the session back (scs writes the whole map). It does
// not see the tokens: until a replica of this version serves the session,
// it sends no id_token_hint at RP-initiated logout, does not refresh (nor
// end, with outlive_tokens: false) a login whose tokens expired, and a
// back-channel logout by sid and sub ends the session as one without sid.
// This version reads both forms; when both are present, keyTokens was
// written by an earlier version after this one wrote keyLogin (this version
// never writes keyTokens), so it is the newer and wins.

// keyLogin holds the packed Tokens (packTokens). Short: it is in every
// session.
const keyLogin = "t"

// packLogin replaces the Tokens in values by their packed form, in a copy
// (the caller's map may be shared). Tokens decoded from a packed form that
// is still there keep it, not packed again: whatever puts new tokens or a
// new identity removes keyLogin (record.go).
func packLogin(values map[string]any) map[string]any {
	t, ok := values[keyTokens].(Tokens)
	if !ok {
		return values
	}
	values = maps.Clone(values)
	delete(values, keyTokens)
	if _, packed := values[keyLogin].([]byte); !packed {
		id, _ := values[keyIdentity].(providers.Identity)
		values[keyLogin] = packTokens(t, claimsOf(id))
	}
	return values
}

// claimsOf are the identity's values that ID tokens repeat as claims
// (sub, email, name, preferred_username, the first four groups): a packed
// JWS refers to them rather than repeating them again. At most eight: a
// reference is a control byte from 1 to 8, which JSON never has unescaped.
func claimsOf(id providers.Identity) []string {
	c := make([]string, 4, 8)
	c[0], c[1], c[2], c[3] = id.Subject, id.Email, id.Name, id.PreferredUsername
	return append(c, id.Groups[:min(4, len(id.Groups))]...)
}

// unpackLogin puts a decoded session's packed tokens, unpacked, under
// keyTokens, in place (values is the decoder's own), and keeps the packed
// form for packLogin. Packed tokens that do not unpack (damaged) are
// dropped: the session keeps its identity, without tokens.
func unpackLogin(values map[string]any) {
	b, ok := values[keyLogin].([]byte)
	if !ok {
		return
	}
	if _, old := values[keyTokens].(Tokens); old {
		delete(values, keyLogin) // written since by an earlier version: the newer
		return
	}
	id, _ := values[keyIdentity].(providers.Identity)
	t, err := unpackTokens(b, claimsOf(id))
	if err != nil {
		delete(values, keyLogin)
		return
	}
	values[keyTokens] = t
}

// Packed tokens: a format byte (packedV1), Expiry in Unix seconds
// (uvarint; 0: none), the SID (raw), then RefreshToken, AccessToken and
// IDToken, each a packed string. A field added to Tokens must be added here
// (TestPackTokensEveryField).
const packedV1 = 1

// A packed string is a kind byte and its data: stringRaw, a uvarint length
// and the bytes; stringJWS, a JWS in compact form that base64url-decodes
// canonically: a byte saying which of the identity's claims (claimsOf, bit
// i for the i-th) its payload refers to, a check byte of those values (a
// stale identity then fails to unpack rather than making another token), a
// uvarint length and the deflated (jwsDictionary) header length (uvarint),
// header and payload; then a uvarint length and the signature.
const (
	stringRaw = 0
	stringJWS = 1
)

// jwsDictionary primes deflate with what JWT headers and ID-token payloads
// say, so that even their first claim names are back-references; the
// commonest last (nearer, cheaper to refer to), in the order of IdPs that
// sort their claims. It is part of format packedV1: never change it (a new
// dictionary is a new format byte).
const jwsDictionary = `"ver":"2.0","uti":"","rh":"","idp":"","tid":"","oid":"","hd":"","locale":"","picture":"https://",` +
	`"session_state":"","typ":"ID","jti":"","acr":"","nbf":17,"given_name":"","family_name":"","roles":["` +
	`{"alg":"ES256","typ":"JWT","kid":"{"alg":"RS256","kid":"","typ":"JWT"}` +
	`{"amr":["pwd","mfa"],"at_hash":"","aud":[""],"auth_time":17,"azp":"","c_hash":"","client_id":"",` +
	`"email":"","email_verified":true,"email_verified":false,"exp":17,"groups":["","iat":17,"iss":"https://",` +
	`"name":"","nonce":"","preferred_username":"","sid":"","sub":""}`

// maxUnpacked bounds what an inflated JWS may take (sessions larger than
// the caches' limit are not expected; this only stops a damaged value).
const maxUnpacked = 1 << 20

var errPacked = errors.New("session: damaged packed tokens")

// packTokens packs t; claims are the session identity's (claimsOf), which
// the JWS payloads may refer to.
func packTokens(t Tokens, claims []string) []byte {
	b := make([]byte, 0, 16+len(t.SID)+len(t.RefreshToken)+len(t.AccessToken)+len(t.IDToken))
	b = append(b, packedV1)
	var exp uint64
	if !t.Expiry.IsZero() && t.Expiry.Unix() > 0 {
		exp = uint64(t.Expiry.Unix()) // to the second, earlier rather than later
	}
	b = binary.AppendUvarint(b, exp)
	b = appendRaw(b, t.SID)
	b = appendPacked(b, t.RefreshToken, claims)
	b = appendPacked(b, t.AccessToken, claims)
	return appendPacked(b, t.IDToken, claims)
}

func unpackTokens(b []byte, claims []string) (Tokens, error) {
	var t Tokens
	if len(b) < 1 || b[0] != packedV1 {
		return t, errPacked
	}
	exp, n := binary.Uvarint(b[1:])
	if n <= 0 {
		return t, errPacked
	}
	if exp > 0 {
		t.Expiry = time.Unix(int64(exp), 0).UTC()
	}
	b = b[1+n:]
	var err error
	if t.SID, b, err = readRaw(b); err != nil {
		return t, err
	}
	if t.RefreshToken, b, err = readPacked(b, claims); err != nil {
		return t, err
	}
	if t.AccessToken, b, err = readPacked(b, claims); err != nil {
		return t, err
	}
	if t.IDToken, b, err = readPacked(b, claims); err != nil {
		return t, err
	}
	if len(b) != 0 {
		return t, errPacked
	}
	return t, nil
}

func appendRaw(b []byte, s string) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

// readBytes reads a uvarint length and that many bytes.
func readBytes(b []byte) (field, rest []byte, err error) {
	n, k := binary.Uvarint(b)
	if k <= 0 || n > uint64(len(b)-k) {
		return nil, nil, errPacked
	}
	b = b[k:]
	return b[:n], b[n:], nil
}

func readRaw(b []byte) (string, []byte, error) {
	f, rest, err := readBytes(b)
	return string(f), rest, err
}

// appendPacked appends s as a JWS when it is one that packs back to
// itself, else raw.
func appendPacked(b []byte, s string, claims []string) []byte {
	if j, ok := packJWS(s, claims); ok {
		return append(append(b, stringJWS), j...)
	}
	return appendRaw(append(b, stringRaw), s)
}

func readPacked(b []byte, claims []string) (string, []byte, error) {
	if len(b) == 0 {
		return "", nil, errPacked
	}
	switch b[0] {
	case stringRaw:
		return readRaw(b[1:])
	case stringJWS:
		return readJWS(b[1:], claims)
	}
	return "", nil, errPacked
}

// b64 is base64url without padding, refusing non-canonical trailing bits:
// a segment that decodes encodes back to itself.
var b64 = base64.RawURLEncoding.Strict()

// packJWS packs a compact JWS (see stringJWS); ok is false for anything
// else, or anything that would not unpack to s exactly.
func packJWS(s string, claims []string) ([]byte, bool) {
	h64, rest, ok1 := strings.Cut(s, ".")
	p64, s64, ok2 := strings.Cut(rest, ".")
	// CR and LF: base64's decoder skips them, even strict, so a segment
	// holding one would not encode back to itself.
	if !ok1 || !ok2 || strings.Contains(s64, ".") || len(s) > maxUnpacked || strings.ContainsAny(s, "\r\n") {
		return nil, false
	}
	h, err1 := b64.DecodeString(h64)
	p, err2 := b64.DecodeString(p64)
	sig, err3 := b64.DecodeString(s64)
	if err1 != nil || err2 != nil || err3 != nil {
		return nil, false
	}
	pr, refs := referClaims(p, claims)
	plain := binary.AppendUvarint(make([]byte, 0, 4+len(h)+len(pr)), uint64(len(h)))
	plain = append(append(plain, h...), pr...)
	z := deflateFixed(jwsDict, plain)
	// What readJWS will do, checked here without its base64 (the segments
	// decoded strictly, so they encode back to themselves): the stream
	// inflates to plain, and the references resolve to the payload.
	if !inflatesTo(z, plain) || (refs != 0 && !bytes.Equal(resolveClaims(pr, claims, refs), p)) {
		return nil, false
	}
	out := append(make([]byte, 0, 12+len(z)+len(sig)), refs, claimsCheck(claims, refs))
	out = binary.AppendUvarint(out, uint64(len(z)))
	out = append(out, z...)
	out = binary.AppendUvarint(out, uint64(len(sig)))
	return append(out, sig...), true
}

func readJWS(b []byte, claims []string) (string, []byte, error) {
	if len(b) < 2 {
		return "", nil, errPacked
	}
	refs, check := b[0], b[1]
	if refs>>len(claims) != 0 || claimsCheck(claims, refs) != check {
		return "", nil, errPacked // not the identity it was packed with
	}
	z, b, err := readBytes(b[2:])
	if err != nil {
		return "", nil, err
	}
	sig, b, err := readBytes(b)
	if err != nil {
		return "", nil, err
	}
	plain, err := inflate(z)
	if err != nil {
		return "", nil, err
	}
	n, k := binary.Uvarint(plain)
	if k <= 0 || n > uint64(len(plain)-k) {
		return "", nil, errPacked
	}
	h, p := plain[k:k+int(n)], resolveClaims(plain[k+int(n):], claims, refs)
	var s strings.Builder
	s.Grow(b64.EncodedLen(len(h)) + b64.EncodedLen(len(p)) + b64.EncodedLen(len(sig)) + 2)
	for i, seg := range [][]byte{h, p, sig} {
		if i > 0 {
			s.WriteByte('.')
		}
		s.WriteString(b64.EncodeToString(seg))
	}
	return s.String(), b, nil
}

// referClaims replaces, in a JWS payload, each JSON string equal to one of
// claims (written without escapes) by a reference: the control byte 1+i
// between the quotes, a byte JSON never has unescaped. refs has bit i set
// for each claim referred to. A payload that has such bytes is left alone.
// One pass, left to right: a quote that closes a string referred to does
// not open another.
func referClaims(p []byte, claims []string) ([]byte, byte) {
	usable := make([]bool, len(claims))
	for i, c := range claims {
		usable[i] = len(c) >= 2 && !strings.ContainsFunc(c, func(r rune) bool { return r < 0x20 || r == '"' || r == '\\' })
	}
	var (
		out  []byte // nil until the first reference
		refs byte
		done int // p[:done] is in out
	)
	for k := 0; k < len(p); k++ {
		switch b := p[k]; {
		case b >= 1 && int(b) <= len(claims):
			return p, 0 // would be taken for a reference
		case b != '"':
			continue
		}
		for i, c := range claims {
			end := k + 1 + len(c)
			if usable[i] && end < len(p) && p[end] == '"' && string(p[k+1:end]) == c {
				if out == nil {
					out = make([]byte, 0, len(p))
				}
				out = append(append(out, p[done:k]...), '"', byte(1+i), '"')
				refs |= 1 << i
				k, done = end, end+1
				break
			}
		}
	}
	if out == nil {
		return p, 0
	}
	return append(out, p[done:]...), refs
}

// resolveClaims undoes referClaims: each control byte of refs between two
// quotes becomes its claim again (the quotes may be shared, as an earlier
// version's referClaims could leave them; each reference is its own byte).
func resolveClaims(p []byte, claims []string, refs byte) []byte {
	if refs == 0 {
		return p
	}
	out := make([]byte, 0, len(p)+64)
	done := 0
	for i := 1; i+1 < len(p); i++ {
		if b := p[i]; b >= 1 && int(b) <= len(claims) && refs&(1<<(b-1)) != 0 && p[i-1] == '"' && p[i+1] == '"' {
			out = append(append(out, p[done:i]...), claims[b-1]...)
			done = i + 1
		}
	}
	return append(out, p[done:]...)
}

// claimsCheck is a byte of the CRC-32 of the claims refs refers to.
func claimsCheck(claims []string, refs byte) byte {
	h := crc32.NewIEEE()
	for i, c := range claims {
		if refs&(1<<i) != 0 {
			_, _ = h.Write([]byte(c))
			_, _ = h.Write([]byte{0})
		}
	}
	return byte(h.Sum32())
}

// inflaters inflate packed JWSs (deflateFixed writes them; earlier
// versions wrote them with compress/flate's writer, at BestCompression).
var inflaters = sync.Pool{New: func() any {
	return flate.NewReaderDict(bytes.NewReader(nil), jwsDict)
}}

// jwsDict is jwsDictionary as deflateFixed takes it.
var jwsDict = []byte(jwsDictionary)

func inflate(z []byte) ([]byte, error) { return inflateAtMost(z, maxUnpacked) }

// inflatesTo is whether z inflates to exactly want, as inflate reads it.
func inflatesTo(z, want []byte) bool {
	got, err := inflateAtMost(z, len(want))
	return err == nil && bytes.Equal(got, want)
}

// inflateAtMost inflates z to its end (a stream cut short fails), into at
// most n bytes.
func inflateAtMost(z []byte, n int) ([]byte, error) {
	r := inflaters.Get().(io.ReadCloser)
	defer inflaters.Put(r)
	if err := r.(flate.Resetter).Reset(bytes.NewReader(z), jwsDict); err != nil {
		return nil, errPacked
	}
	b, err := io.ReadAll(io.LimitReader(r, int64(n)+1))
	if err != nil || len(b) > n {
		return nil, errPacked
	}
	return b, nil
}
