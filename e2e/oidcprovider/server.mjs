// A certified OpenID Provider (npm oidc-provider) for oidc-broker's end-to-end interop
// tests. TEST-ONLY: it signs in any login name with any password through oidc-provider's
// development interactions, and prints the values of the codes and tokens it issues.
//
//	node server.mjs CONFIG.json          (or the JSON itself in $OIDC_PROVIDER_CONFIG)
//
// The configuration (JSON):
//
//	{
//	  "port": 0,                        // on 127.0.0.1; 0 picks a free port
//	  "issuer": "http://127.0.0.1:P",   // optional; default http://127.0.0.1:<port>
//	  "cookie_prefix": "contoso",       // prefix of its cookie names (see below)
//	  "claims": {"groups": ["groups"]}, // scope -> claims, added to the standard ones
//	  "token_endpoint_auth_methods": ["client_secret_basic"], // optional; enforced
//	  "exit_with_stdin": true,          // also exit when stdin closes (its parent died)
//	  "backchannel_logout": true,       // send logout tokens to clients' backchannel_logout_uri
//	  "access_token_ttl": 31,           // seconds; optional (default one hour)
//	  "refresh_tokens": true,           // refresh tokens for every client allowed the grant
//	  "end_session_requires_id_token_hint": true, // refuse sign-out requests without one
//	  "http_post_methods": true,        // also accept POST at end_session (and authorization)
//	  "tls": {"cert_file": "cert.pem", "key_file": "key.pem"}, // serve HTTPS
//	  "api_resource": {"audience": "api://reports", "scope": "reports.read"}, // client credentials
//	  "clients": [{"client_id": "...", "client_secret": "...", "redirect_uris": ["..."],
//	               "token_endpoint_auth_method": "client_secret_basic", ...}],
//	  "accounts": {"alice": {"email": "...", "groups": ["staff"], ...}}
//	}
//
// Clients are oidc-provider client metadata, passed through unchanged. An account is looked
// up by the login name typed at the login page, which oidc-provider makes the "sub"; its
// object holds every other claim the provider may release for it (the scopes decide which
// it does). A login name with no account signs in but gets only "sub".
//
// oidc-provider itself takes a client secret in the Authorization header or in the body,
// whichever the client registered; "token_endpoint_auth_methods" makes the listed methods
// the only ones accepted (and advertised), so a client that uses another method fails.
//
// RP-Initiated Logout is always on (GET /session/end shows "Do you want to sign-out?"; a
// client's post_logout_redirect_uris are where it may send the browser back). With
// "backchannel_logout", a sign-out there also posts a logout token to each signed-in client
// that registered a "backchannel_logout_uri" (with "backchannel_logout_session_required",
// its ID tokens and logout tokens carry "sid"); each delivery is logged on stderr as
// "backchannel.success <client_id>" or "backchannel.error: ...".
//
// With "end_session_requires_id_token_hint", an end_session request (GET or POST) without
// id_token_hint gets a 400 page instead of the sign-out confirmation, and the provider's
// session stays: ORY Hydra refuses such a request when it carries state, and Okta always.
// oidc-provider itself accepts client_id in its place.
//
// With "http_post_methods", oidc-provider's enableHttpPostMethods: the end_session and
// authorization endpoints accept form POSTs too (RP-Initiated Logout 1.0 §2). A cross-site
// POST carries only cookies with SameSite=None, which browsers accept only when Secure, so
// oidc-provider requires that of its session cookie: use it together with "tls".
//
// With "api_resource", clients allowed the client_credentials grant get RFC 9068 JWT access
// tokens (typ at+jwt, signed RS256) for that resource (RFC 8707 "resource" parameter,
// which may be left out: it is the default), with the scopes they ask of its "scope"
// (space-separated): how an API client, a script, obtains a token for the apps behind the
// broker. Such a client needs no redirect_uris.
//
// With "tls", it serves HTTPS with that certificate and key (PEM files) and the default
// issuer is https://127.0.0.1:<port>.
//
// Once it listens it prints "READY <issuer>" on stdout; each authorization code, access
// token and refresh token it stores is printed as "ISSUED <kind> <value>", so a test can
// check that none of them leaks. It exits on SIGTERM or SIGINT, and, with
// "exit_with_stdin", when stdin closes, so it does not outlive a test that was killed.
//
// Cookies are not separated by port, so two of these on 127.0.0.1 need distinct cookie
// names: "cookie_prefix" (default: the port) is put in front of each.

import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createServer } from 'node:http';
import { createServer as createTLSServer } from 'node:https';
import process from 'node:process';

import Provider, { errors } from 'oidc-provider';

const config = readConfig();

// Claims by scope: the standard ones plus the configuration's (groups, typically).
const claims = {
  openid: ['sub'],
  email: ['email', 'email_verified'],
  profile: ['name', 'given_name', 'family_name', 'preferred_username', 'locale', 'zoneinfo', 'updated_at'],
  ...config.claims,
};

const server = config.tls
  ? createTLSServer({ cert: readFileSync(config.tls.cert_file), key: readFileSync(config.tls.key_file) })
  : createServer();
await new Promise((resolve, reject) => {
  server.once('error', reject);
  server.listen(config.port ?? 0, '127.0.0.1', resolve);
});
const issuer = config.issuer ?? `${config.tls ? 'https' : 'http'}://127.0.0.1:${server.address().port}`;
const cookiePrefix = config.cookie_prefix ?? String(server.address().port);

const provider = new Provider(issuer, {
  clients: config.clients.map(apiClient),
  jwks: { keys: signingKeys() },
  claims,
  // Release the scopes' claims in the ID token too, not only at userinfo: the broker must
  // cope with both.
  conformIdTokenClaims: false,
  // The broker always sends S256 PKCE; insist on it, so a regression shows here.
  pkce: { required: () => true },
  features: {
    devInteractions: { enabled: true },
    ...(config.backchannel_logout && { backchannelLogout: { enabled: true } }),
    ...(config.api_resource && apiResourceFeatures(config.api_resource)),
  },
  cookies: {
    names: {
      session: `${cookiePrefix}_session`,
      interaction: `${cookiePrefix}_interaction`,
      resume: `${cookiePrefix}_interaction_resume`,
    },
    keys: [randomBytes(32).toString('base64url')],
    ...(config.http_post_methods && { long: { httpOnly: true, sameSite: 'none' } }),
  },
  clientBasedCORS: () => false,
  ...(config.http_post_methods && { enableHttpPostMethods: true }),
  ...(config.access_token_ttl && { ttl: { AccessToken: config.access_token_ttl } }),
  // Like Keycloak: a refresh token without offline_access, which oidc-provider otherwise
  // honours only together with prompt=consent (OpenID Connect Core §11).
  ...(config.refresh_tokens && {
    issueRefreshToken: async (ctx, client) => client.grantTypeAllowed('refresh_token'),
  }),
  // oidc-provider refuses outgoing requests to special-use addresses (SSRF protection);
  // the broker it posts logout tokens to is on loopback. TEST-ONLY.
  fetch(url, options) {
    if (new URL(url).hostname === '127.0.0.1') {
      delete options.dispatcher; // eslint-disable-line no-param-reassign
    }
    return globalThis.fetch(url, options);
  },
  ...(config.token_endpoint_auth_methods && { clientAuthMethods: config.token_endpoint_auth_methods }),
  async findAccount(ctx, id) {
    const account = config.accounts?.[id] ?? {};
    return {
      accountId: id,
      async claims() {
        return { ...account, sub: id };
      },
    };
  },
});

logEvents(provider);
enforceClientAuthMethods(provider, config.token_endpoint_auth_methods);
if (config.end_session_requires_id_token_hint) {
  requireIdTokenHint(provider);
}
server.on('request', provider.callback());

function shutdown() {
  server.close();
  server.closeAllConnections();
  process.exit(0);
}
for (const signal of ['SIGTERM', 'SIGINT']) {
  process.on(signal, shutdown);
}
if (config.exit_with_stdin) {
  process.stdin.on('end', shutdown).on('close', shutdown).resume();
}

console.log(`READY ${issuer}`);

// readConfig reads the JSON configuration from the file named by the first argument, or from
// $OIDC_PROVIDER_CONFIG.
function readConfig() {
  const text = process.argv[2] ? readFileSync(process.argv[2], 'utf8') : process.env.OIDC_PROVIDER_CONFIG;
  if (!text) {
    console.error('usage: node server.mjs CONFIG.json (or set OIDC_PROVIDER_CONFIG)');
    process.exit(2);
  }
  return JSON.parse(text);
}

// signingKeys returns fresh RS256 and ES256 keys as private JWKs; a client chooses with
// id_token_signed_response_alg (default RS256).
function signingKeys() {
  const rsa = generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey.export({ format: 'jwk' });
  const ec = generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey.export({ format: 'jwk' });
  return [
    { ...rsa, kid: 'rs256', alg: 'RS256', use: 'sig' },
    { ...ec, kid: 'es256', alg: 'ES256', use: 'sig' },
  ];
}

// apiClient completes the metadata of a client allowed only the client_credentials grant: no
// responses, no redirect URIs.
function apiClient(c) {
  if (c.grant_types?.length === 1 && c.grant_types[0] === 'client_credentials') {
    return { ...c, response_types: [], redirect_uris: [] };
  }
  return c;
}

// apiResourceFeatures turns on the client_credentials grant and RFC 8707 resource indicators
// for one resource, whose tokens are RFC 9068 JWTs (see "api_resource" above).
function apiResourceFeatures(api) {
  return {
    clientCredentials: { enabled: true },
    resourceIndicators: {
      enabled: true,
      defaultResource: async (ctx, client, oneOf) => oneOf ?? (client.grantTypeAllowed('client_credentials') ? api.audience : undefined),
      useGrantedResource: async () => true,
      getResourceServerInfo: async (ctx, resource) => {
        if (resource !== api.audience) {
          throw new errors.InvalidTarget();
        }
        return {
          scope: api.scope, audience: api.audience, accessTokenTTL: 300, accessTokenFormat: 'jwt',
          jwt: { sign: { alg: 'RS256' } },
        };
      },
    },
  };
}

// enforceClientAuthMethods refuses client secrets in the Authorization header at the token
// endpoint unless client_secret_basic is allowed. (Without client_secret_post among
// clientAuthMethods, oidc-provider already ignores secrets in the body.)
function enforceClientAuthMethods(p, methods) {
  if (!methods || methods.includes('client_secret_basic')) {
    return;
  }
  const tokenPath = p.pathFor('token');
  p.use(async (ctx, next) => {
    if (ctx.path === tokenPath && ctx.headers.authorization !== undefined) {
      ctx.status = 401;
      ctx.body = {
        error: 'invalid_client',
        error_description: `client authentication must use one of: ${methods.join(', ')}`,
      };
      console.error(`POST ${tokenPath}: refused client_secret_basic (allowed: ${methods.join(', ')})`);
      return;
    }
    await next();
  });
}

// requireIdTokenHint replaces the sign-out confirmation page of an end_session request
// without id_token_hint by a 400 error page, so that the session cannot be ended from it.
function requireIdTokenHint(p) {
  const endSessionPath = p.pathFor('end_session');
  p.use(async (ctx, next) => {
    await next();
    if (ctx.path === endSessionPath && ctx.status === 200 && !ctx.oidc?.params?.id_token_hint) {
      ctx.status = 400;
      ctx.type = 'text/plain';
      ctx.body = 'invalid_request: id_token_hint is missing';
      console.error(`${ctx.method} ${endSessionPath}: refused without id_token_hint`);
    }
  });
}

// logEvents prints what helps when a test fails: requests and errors on stderr, and the
// values of stored codes and tokens on stdout.
function logEvents(p) {
  p.use(async (ctx, next) => {
    await next();
    console.error(`${ctx.method} ${ctx.path} ${ctx.status}`);
  });
  p.on('backchannel.success', (ctx, client) => console.error(`backchannel.success ${client.clientId}`));
  for (const kind of ['authorization_code', 'access_token', 'refresh_token']) {
    p.on(`${kind}.saved`, (token) => console.log(`ISSUED ${kind} ${token.jti}`));
  }
  for (const event of ['server_error', 'authorization.error', 'grant.error', 'userinfo.error',
    'introspection.error', 'revocation.error', 'end_session.error', 'discovery.error', 'jwks.error',
    'backchannel.error']) {
    p.on(event, (ctx, err) => {
      console.error(`${event}: ${err.error ?? err.name}: ${err.error_description ?? err.message}`
        + (err.error_detail ? ` (${err.error_detail})` : ''));
    });
  }
}
