/* /docs: start Swagger UI (its bundle, served from /docs/static, defines SwaggerUIBundle).
 * A file rather than an inline <script>, so the page's Content-Security-Policy can be script-src 'self'.
 * The document's URL comes from the page (relative, so /docs also works behind a reverse proxy that
 * mounts the gateway under a prefix). */

const root = document.getElementById('swagger-ui');
document.body.style.margin = '0';   // CSSOM, which the CSP allows (an inline <style> it would not)

window.ui = window.SwaggerUIBundle({
  url: root.dataset.url,
  dom_id: '#swagger-ui',
  deepLinking: true,
  persistAuthorization: true,
  presets: [window.SwaggerUIBundle.presets.apis, window.SwaggerUIStandalonePreset],
  layout: 'StandaloneLayout',
});
