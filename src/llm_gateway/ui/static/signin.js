// Signing in on the chat page, when the gateway has auth.jwt.client_id (config.json says so).
//
// - OpenID Connect authorization code flow with PKCE, as a public client (no secret), through
//   the vendored oidc-client-ts (vendor/oidc-client-ts.min.js, loaded only when sign-in is on).
//   The redirect back lands on this same page, which finishes the flow and cleans the URL.
// - Tokens stay in sessionStorage (this tab only, gone when it closes), never in localStorage
//   or a cookie; so does the flow's state (its state value and PKCE verifier).
// - The gateway is sent the access token when the issuer's access tokens are JWTs (Cognito's
//   are), else the ID token (an opaque access token means nothing to the gateway).
// - Renewal: when the token expires within a minute (checked before each request, and every
//   30 s by app.js), the refresh token (when the issuer gave one) gets a new one; when that
//   fails, or the new set still carries an expiring token, the user is signed out here and
//   asked to sign in again. No hidden-iframe renewal: the page refuses to be framed
//   (frame-ancestors 'none').
"use strict";

window.gatewaySignIn = (function () {
  const RENEW_WITHIN_S = 60;

  function base64UrlJson(part) {
    let text = part.replace(/-/g, "+").replace(/_/g, "/");
    while (text.length % 4) text += "=";
    const bytes = Uint8Array.from(atob(text), (c) => c.charCodeAt(0));
    return JSON.parse(new TextDecoder().decode(bytes));
  }

  // The claims of a JWT (not verified: the gateway does that), or null for anything else.
  function jwtClaims(token) {
    const parts = typeof token === "string" ? token.split(".") : [];
    if (parts.length !== 3) return null;
    try {
      const header = base64UrlJson(parts[0]);
      const claims = base64UrlJson(parts[1]);
      if (!header || typeof header.alg !== "string" || !claims || typeof claims !== "object") return null;
      return claims;
    } catch (_) {
      return null;
    }
  }

  // {token, exp} of what the gateway is sent, or null when neither token is a JWT.
  function bearer(user) {
    for (const token of [user.access_token, user.id_token]) {
      const claims = jwtClaims(token);
      if (claims) return { token, exp: typeof claims.exp === "number" ? claims.exp : user.expires_at };
    }
    return null;
  }

  function displayName(profile) {
    profile = profile || {};
    for (const claim of ["name", "email", "preferred_username", "cognito:username", "sub"]) {
      if (typeof profile[claim] === "string" && profile[claim]) return profile[claim];
    }
    return "signed in";
  }

  function loadScript(src) {
    return new Promise((resolve, reject) => {
      const script = document.createElement("script");
      script.src = src;
      script.onload = resolve;
      script.onerror = () => reject(new Error("could not load " + src));
      document.head.appendChild(script);
    });
  }

  // The sign-in settings from the gateway (null when it has none), then the library.
  async function start(configUrl) {
    let settings = null;
    try {
      const response = await fetch(configUrl, { cache: "no-cache" });
      if (response.ok) settings = (await response.json()).sign_in || null;
    } catch (_) {
      settings = null;
    }
    if (!settings || !settings.issuer || !settings.client_id) return null;
    if (!window.isSecureContext) {
      // PKCE needs Web Crypto, which browsers offer only to https pages and localhost.
      throw new Error("signing in needs this page over https (or at 127.0.0.1 / localhost)");
    }
    await loadScript(new URL("vendor/oidc-client-ts.min.js", document.baseURI).href);
    return session(settings);
  }

  function session(settings) {
    const oidc = window.oidc;
    const page = new URL("./", document.baseURI).href; // the redirect target: this page
    const store = new oidc.WebStorageStateStore({ store: window.sessionStorage });
    const manager = new oidc.UserManager({
      authority: settings.issuer,
      client_id: settings.client_id,
      redirect_uri: page,
      post_logout_redirect_uri: page,
      response_type: "code", // with PKCE (S256), oidc-client-ts's default for this flow
      scope: settings.scope || "openid",
      userStore: store,
      stateStore: store,
      automaticSilentRenew: false, // renewed on demand below, by refresh token only
      monitorSession: false,
      loadUserInfo: false,
    });

    // True when the last token ran out and could not be renewed (the page says so).
    let expired = false;

    return {
      issuer: settings.issuer,

      // Finish a sign-in (?code=…&state=…) or sign-out (?state=…) redirect to this page, and
      // take the parameters out of the address bar. Returns an error message or null.
      async completeRedirect() {
        const params = new URLSearchParams(window.location.search);
        if (!params.has("state") && !params.has("error")) return null;
        const url = window.location.href;
        window.history.replaceState(null, "", page);
        try {
          if (params.has("code") || params.has("error")) await manager.signinRedirectCallback(url);
          else await manager.signoutRedirectCallback(url);
          expired = false;
          return null;
        } catch (err) {
          return "Sign-in did not complete: " + (err && err.message ? err.message : String(err));
        }
      },

      async user() {
        const user = await manager.getUser();
        return user && bearer(user) ? user : null;
      },

      get expired() {
        return expired;
      },

      // The bearer token for the next request, renewed when it is about to expire; null when
      // nobody is signed in (or the session ended: then `expired` is true).
      async token() {
        let user = await manager.getUser();
        if (!user) return null;
        let current = bearer(user);
        const soon = () => !current || current.exp - Date.now() / 1000 < RENEW_WITHIN_S;
        if (soon() && user.refresh_token) {
          try {
            user = await manager.signinSilent(); // the refresh-token grant: one fetch
            current = user ? bearer(user) : null;
          } catch (_) {
            current = null;
          }
        }
        if (soon()) {
          await manager.removeUser();
          expired = true;
          return null;
        }
        expired = false;
        return current.token;
      },

      signIn() {
        expired = false;
        return manager.signinRedirect(); // leaves the page for the issuer's sign-in
      },

      // RP-initiated logout at the issuer when it has an end-session endpoint (it comes back
      // here); otherwise (Cognito's logout is not that endpoint) the tokens are forgotten here.
      async signOut() {
        try {
          await manager.signoutRedirect();
          return true;
        } catch (_) {
          await manager.removeUser();
          return false;
        }
      },
    };
  }

  return { start, displayName, tokenToSend: (user) => (bearer(user) || {}).token || null };
})();
