// The API documentation page: Swagger UI (served by codenv from its package) on this server's
// schema. Requests tried from the page use the browser's session, so they repeat its CSRF token.
"use strict";

function sessionCsrf() {
  var found = document.cookie.match(/(?:^|; )codenv_csrf=([^;]*)/);
  return found ? decodeURIComponent(found[1]) : "";
}

window.addEventListener("DOMContentLoaded", function () {
  var root = document.getElementById("swagger-ui");
  window.ui = window.SwaggerUIBundle({
    url: root.dataset.schema,
    dom_id: "#swagger-ui",
    deepLinking: true,
    // No badge from the public validator: nothing on this page leaves the server.
    validatorUrl: null,
    presets: [window.SwaggerUIBundle.presets.apis],
    layout: "BaseLayout",
    requestInterceptor: function (request) {
      request.headers["X-CSRF-Token"] = sessionCsrf();
      return request;
    }
  });
});
