// An OpenAPI contract through the vendored Swagger UI: read-only (no "Try it out").
(function () {
  var node = document.getElementById("swagger-ui");
  if (!node || !window.SwaggerUIBundle) { return; }
  window.SwaggerUIBundle({
    url: node.dataset.document,
    domNode: node,
    deepLinking: true,
    docExpansion: "list",
    supportedSubmitMethods: [],
    validatorUrl: null
  });
})();
