// Loaded first in <body>, before anything is drawn: tells GOV.UK Frontend's CSS that scripts run
// (and whether this browser supports its components). A file, not an inline script, so that the
// Content-Security-Policy needs no 'unsafe-inline'.
document.body.className +=
  " js-enabled" + ("noModule" in HTMLScriptElement.prototype ? " govuk-frontend-supported" : "");
