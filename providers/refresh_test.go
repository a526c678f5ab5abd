package providers

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"slices"
	"testing"
	"time"
)

func (f *fakeOP) idClaims(now time.Time, nonce string, groups ...string) map[string]any {
	c := map[string]any{"iss": f.srv.URL, "aud": "client-1", "sub": "user-1", "sid": "sid-1",
		"iat": now.Unix(), "exp": now.Add(time.Hour).Unix(), "groups": groups}
	if nonce != "" {
		c["nonce"] = nonce
	}
	return c
}

func TestRefresh(t *testing.T) {
	now := time.Now().Truncate(time.Second) // zitadel checks ID tokens against the real clock
	clock := func() time.Time { return now }
	ctx := context.Background()
	type answer struct {
		status int
		body   map[string]any
	}
	cases := []struct {
		name    string
		answer  func(f *fakeOP, t *testing.T) answer
		check   func(t *testing.T, old string, res *Result)
		refused error // want errors.Is(err, ErrRefreshRefused) and this
		passing bool  // want an error that is not ErrRefreshRefused
	}{
		{name: "rotated, new ID token repeating the nonce", answer: func(f *fakeOP, t *testing.T) answer {
			return answer{200, map[string]any{"access_token": "at-2", "token_type": "Bearer", "expires_in": 300,
				"refresh_token": "rt-2", "id_token": f.signed(t, f.idClaims(now, "n-1", "b"), "JWT")}}
		}, check: func(t *testing.T, old string, res *Result) {
			if res.RefreshToken != "rt-2" || res.SessionID != "sid-1" || !res.Expiry.Equal(now.Add(300*time.Second)) ||
				!slices.Equal(res.Identity.Groups, []string{"b"}) || res.Identity.Subject != "user-1" || res.IDToken == "" {
				t.Errorf("result %+v", res)
			}
		}},
		{name: "new ID token without nonce (OIDC Core 12.2)", answer: func(f *fakeOP, t *testing.T) answer {
			return answer{200, map[string]any{"access_token": "at-2", "token_type": "Bearer", "expires_in": 300,
				"id_token": f.signed(t, f.idClaims(now, "", "b"), "JWT")}}
		}, check: func(t *testing.T, old string, res *Result) {
			if res.RefreshToken != "rt-1" || !slices.Equal(res.Identity.Groups, []string{"b"}) {
				t.Errorf("result %+v", res)
			}
		}},
		{name: "no ID token: the old claims, the old tokens", answer: func(*fakeOP, *testing.T) answer {
			return answer{200, map[string]any{"access_token": "at-2", "token_type": "Bearer", "expires_in": 60}}
		}, check: func(t *testing.T, old string, res *Result) {
			if res.RefreshToken != "rt-1" || res.IDToken != old ||
				!slices.Equal(res.Identity.Groups, []string{"a"}) || res.SessionID != "sid-1" {
				t.Errorf("result %+v", res)
			}
		}},
		{name: "no expires_in: the ID token's exp", answer: func(f *fakeOP, t *testing.T) answer {
			return answer{200, map[string]any{"access_token": "at-2", "token_type": "Bearer",
				"id_token": f.signed(t, f.idClaims(now, "", "b"), "JWT")}}
		}, check: func(t *testing.T, old string, res *Result) {
			if !res.Expiry.Equal(now.Add(time.Hour)) {
				t.Errorf("expiry %v", res.Expiry)
			}
		}},
		{name: "nonce of another login", refused: ErrRefreshNonce, answer: func(f *fakeOP, t *testing.T) answer {
			return answer{200, map[string]any{"access_token": "at-2", "token_type": "Bearer", "expires_in": 300,
				"id_token": f.signed(t, f.idClaims(now, "n-other", "b"), "JWT")}}
		}},
		{name: "another sub", refused: ErrRefreshSubject, answer: func(f *fakeOP, t *testing.T) answer {
			c := f.idClaims(now, "", "b")
			c["sub"] = "user-2"
			return answer{200, map[string]any{"access_token": "at-2", "token_type": "Bearer", "expires_in": 300,
				"id_token": f.signed(t, c, "JWT")}}
		}},
		{name: "another audience", refused: ErrRefreshRefused, answer: func(f *fakeOP, t *testing.T) answer {
			c := f.idClaims(now, "", "b")
			c["aud"] = "client-2"
			return answer{200, map[string]any{"access_token": "at-2", "token_type": "Bearer", "expires_in": 300,
				"id_token": f.signed(t, c, "JWT")}}
		}},
		{name: "ID token signature broken", refused: ErrRefreshRefused, answer: func(f *fakeOP, t *testing.T) answer {
			tok := f.signed(t, f.idClaims(now, "", "b"), "JWT")
			return answer{200, map[string]any{"access_token": "at-2", "token_type": "Bearer", "expires_in": 300,
				"id_token": tok[:len(tok)-4] + "AAAA"}}
		}},
		{name: "invalid_grant", refused: ErrRefreshRefused, answer: func(*fakeOP, *testing.T) answer {
			return answer{400, map[string]any{"error": "invalid_grant", "error_description": "revoked"}}
		}},
		{name: "temporarily_unavailable", passing: true, answer: func(*fakeOP, *testing.T) answer {
			return answer{503, map[string]any{"error": "temporarily_unavailable"}}
		}},
		{name: "a proxy's 502 page", passing: true, answer: func(*fakeOP, *testing.T) answer {
			return answer{502, map[string]any{"message": "bad gateway"}}
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			f := newFakeOP(t)
			old := f.signed(t, f.idClaims(now.Add(-2*time.Hour), "n-1", "a"), "JWT")
			f.set(func(o *fakeOP) {
				o.token = func(url.Values) (int, any) { a := c.answer(f, t); return a.status, a.body }
			})
			p := f.provider(t, clock, func(cfg *Config) { cfg.Userinfo = "never" }).(Refresher)
			res, err := p.Refresh(ctx, RefreshRequest{RefreshToken: "rt-1", Subject: "user-1", IDToken: old})
			switch {
			case c.refused != nil:
				if !errors.Is(err, ErrRefreshRefused) || !errors.Is(err, c.refused) {
					t.Fatalf("err = %v, want %v", err, c.refused)
				}
			case c.passing:
				if err == nil || errors.Is(err, ErrRefreshRefused) {
					t.Fatalf("err = %v, want a passing error", err)
				}
			case err != nil:
				t.Fatalf("refresh: %v", err)
			default:
				c.check(t, old, res)
			}
		})
	}
}

func TestRefreshTokenError(t *testing.T) {
	f := newFakeOP(t)
	f.set(func(o *fakeOP) {
		o.token = func(url.Values) (int, any) { return 400, map[string]any{"error": "invalid_grant"} }
	})
	_, err := f.provider(t, time.Now).(Refresher).Refresh(context.Background(), RefreshRequest{RefreshToken: "rt", Subject: "s"})
	var te *TokenError
	if !errors.As(err, &te) || te.Code != "invalid_grant" {
		t.Errorf("err = %v, want a *TokenError invalid_grant", err)
	}
}

// TestRefreshRequest: the grant authenticates as configured and asks for
// no scope.
func TestRefreshRequest(t *testing.T) {
	for _, method := range []string{AuthClientSecretBasic, AuthClientSecretPost, AuthNone} {
		t.Run(method, func(t *testing.T) {
			f := newFakeOP(t)
			f.set(func(o *fakeOP) {
				o.token = func(url.Values) (int, any) {
					return 200, map[string]any{"access_token": "at", "token_type": "Bearer", "expires_in": 60}
				}
			})
			p := f.provider(t, time.Now, func(c *Config) {
				c.TokenEndpointAuthMethod, c.Userinfo = method, "never"
				if method == AuthNone {
					c.ClientSecret = ""
				}
			}).(Refresher)
			if _, err := p.Refresh(context.Background(), RefreshRequest{RefreshToken: "rt-1", Subject: "user-1"}); err != nil {
				t.Fatal(err)
			}
			var form url.Values
			var hdr http.Header
			f.set(func(o *fakeOP) { form, hdr = o.tokenForms[0], o.tokenHeader[0] })
			if form.Get("grant_type") != "refresh_token" || form.Get("refresh_token") != "rt-1" || form.Has("scope") {
				t.Errorf("form %v", form)
			}
			_, _, basic := (&http.Request{Header: hdr}).BasicAuth()
			switch method {
			case AuthClientSecretBasic:
				if !basic || form.Has("client_secret") {
					t.Errorf("basic: header %v form %v", basic, form)
				}
			case AuthClientSecretPost:
				if basic || form.Get("client_id") != "client-1" || form.Get("client_secret") != "secret-1" {
					t.Errorf("post: header %v form %v", basic, form)
				}
			case AuthNone:
				if basic || form.Get("client_id") != "client-1" || form.Has("client_secret") {
					t.Errorf("none: header %v form %v", basic, form)
				}
			}
		})
	}
}

// TestRefreshRereadsUserinfo: groups come from userinfo when the IdP has
// it, and a userinfo for someone else refuses the refresh.
func TestRefreshRereadsUserinfo(t *testing.T) {
	f := newFakeOP(t)
	f.set(func(o *fakeOP) {
		o.userinfo = map[string]any{"sub": "user-1", "groups": []string{"from-userinfo"}}
		o.token = func(url.Values) (int, any) {
			return 200, map[string]any{"access_token": "at", "token_type": "Bearer", "expires_in": 60}
		}
	})
	p := f.provider(t, time.Now).(Refresher)
	res, err := p.Refresh(context.Background(), RefreshRequest{RefreshToken: "rt", Subject: "user-1"})
	if err != nil || !slices.Equal(res.Identity.Groups, []string{"from-userinfo"}) {
		t.Fatalf("refresh: %v %+v", err, res)
	}
	f.set(func(o *fakeOP) { o.userinfo["sub"] = "user-2" })
	if _, err := p.Refresh(context.Background(), RefreshRequest{RefreshToken: "rt", Subject: "user-1"}); !errors.Is(err, ErrRefreshRefused) || !errors.Is(err, ErrUserinfoSubject) {
		t.Errorf("userinfo of another sub: %v", err)
	}
}
