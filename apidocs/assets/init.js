// Swagger UI on this service's copy of docs/openapi.yaml (its `servers` is the gateway, so "Try it out" calls the
// gateway with the token given to Authorize). A file, not an inline script: the page's CSP allows 'self' only.
window.addEventListener("load", function () {
  var here = document.baseURI;
  window.ui = SwaggerUIBundle({
    url: new URL("openapi.yaml", here).href,
    dom_id: "#swagger-ui",
    deepLinking: true,
    validatorUrl: null,  // the default sends the spec's URL to validator.swagger.io
    oauth2RedirectUrl: new URL("oauth2-redirect.html", here).href,
    presets: [SwaggerUIBundle.presets.apis],
    layout: "BaseLayout",  // no top bar: it loads any URL typed into it
    displayRequestDuration: true,
  });
});
