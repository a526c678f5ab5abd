// oidc-broker: when a request of this page gets 401 because the session ended
// (a Dash callback, a fetch to an API), send the browser to sign in and back to
// this page. The broker (and oidc_broker's login_required) answer such requests
// with JSON naming the sign-in page: {"error": "not signed in", "sign_in_url": ...}.
(function () {
  "use strict";
  var fetch = window.fetch;
  if (!fetch) return;
  var leaving = false;
  window.fetch = function () {
    return fetch.apply(this, arguments).then(function (resp) {
      // Only answers from this page's own origin: nobody else may send the browser away.
      if (resp.status === 401 && !leaving && new URL(resp.url, location.href).origin === location.origin) {
        resp.clone().json().then(function (body) {
          if (!body || typeof body.sign_in_url !== "string" || leaving) return;
          var to = new URL(body.sign_in_url, location.href);
          if (to.protocol !== "https:" && to.protocol !== "http:") return;
          to.searchParams.set("rd", location.href); // back to this page, not to the API call
          leaving = true;
          location.assign(to.toString());
        }, function () {});
      }
      return resp;
    });
  };
})();
