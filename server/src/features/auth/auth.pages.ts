// Server-rendered pages of the sign-in and consent flows. No scripts; styles from
// /auth/assets/auth.css; every interpolated value is HTML-escaped.

export function escapeHtml(value: unknown): string {
  return String(value ?? '').replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

function page(title: string, body: string): string {
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${escapeHtml(title)} · MCP Gateway</title>
<link rel="stylesheet" href="/auth/assets/auth.css">
</head>
<body><main class="card">${body}</main></body>
</html>`;
}

export const AUTH_CSS = `body{font-family:system-ui,-apple-system,'Segoe UI',sans-serif;background:#f6f7f9;color:#1b1f24;margin:0}
.card{max-width:30rem;margin:4rem auto;background:#fff;border:1px solid #d0d7de;border-radius:8px;padding:1.5rem 2rem}
h1{font-size:1.4rem;margin-top:0}.note{background:#fff8c5;border:1px solid #d4a72c;border-radius:6px;padding:.6rem .8rem;font-size:.9rem}
.error{background:#ffebe9;border:1px solid #ff8182;border-radius:6px;padding:.6rem .8rem}
label{display:block;margin:.8rem 0 .3rem;font-weight:600}input[type=password],input[type=text]{width:100%;box-sizing:border-box;padding:.5rem;border:1px solid #d0d7de;border-radius:6px}
button{margin-top:1rem;padding:.5rem 1rem;border-radius:6px;border:1px solid #1f883d;background:#1f883d;color:#fff;font-weight:600;cursor:pointer}
button.secondary{background:#fff;color:#1b1f24;border-color:#d0d7de}dl{display:grid;grid-template-columns:auto 1fr;gap:.3rem 1rem}dt{font-weight:600}dd{margin:0;word-break:break-all}
.actions{display:flex;gap:.6rem}
a.button{display:inline-block;margin-top:1rem;padding:.5rem 1rem;border-radius:6px;background:#1f883d;color:#fff;font-weight:600;text-decoration:none}`;

/** Local sign-in (embedded default, no identity provider). */
export function localLoginPage(options: {
  csrf: string;
  returnTo: string;
  error?: string | undefined;
}): string {
  return page(
    'Sign in',
    `<h1>Sign in</h1>
<p class="note">No identity provider is configured: this gateway runs in single-machine mode. Only the
bootstrap administrator can sign in, with the admin API key printed at first start (or
ADMIN_BOOTSTRAP_TOKEN). Configure OIDC_ISSUER to let your organisation sign in.</p>
${options.error ? `<p class="error" role="alert">${escapeHtml(options.error)}</p>` : ''}
<form method="post" action="/auth/local">
<input type="hidden" name="_csrf" value="${escapeHtml(options.csrf)}">
<input type="hidden" name="returnTo" value="${escapeHtml(options.returnTo)}">
<label for="token">Admin API key</label>
<input id="token" name="token" type="password" autocomplete="current-password" required>
<button type="submit">Sign in</button>
</form>`,
  );
}

/** The consent page of the OAuth flow: which client wants what. */
export function consentPage(options: {
  uid: string;
  csrf: string;
  clientName: string;
  clientId: string;
  redirectUri: string;
  resources: string[];
  scopes: string[];
  userName: string;
}): string {
  return page(
    'Allow access',
    `<h1>Allow ${escapeHtml(options.clientName)} to use the gateway as you?</h1>
<p>Signed in as <strong>${escapeHtml(options.userName)}</strong>.</p>
<dl>
<dt>Client</dt><dd>${escapeHtml(options.clientName)} <small>(${escapeHtml(options.clientId)})</small></dd>
<dt>Redirects to</dt><dd>${escapeHtml(options.redirectUri)}</dd>
<dt>Access to</dt><dd>${options.resources.map((r) => escapeHtml(r)).join('<br>') || 'the gateway'}</dd>
<dt>Scopes</dt><dd>${escapeHtml(options.scopes.join(' ') || '(none)')}</dd>
</dl>
<p>The client can use every MCP server and tool you may use at the addresses above, until you
revoke it under "Connected clients".</p>
<div class="actions">
<form method="post" action="/oauth/interaction/${escapeHtml(options.uid)}/confirm">
<input type="hidden" name="_csrf" value="${escapeHtml(options.csrf)}">
<button type="submit">Allow</button>
</form>
<form method="post" action="/oauth/interaction/${escapeHtml(options.uid)}/abort">
<input type="hidden" name="_csrf" value="${escapeHtml(options.csrf)}">
<button type="submit" class="secondary">Deny</button>
</form>
</div>`,
  );
}

export function errorPage(title: string, message: string): string {
  return page(title, `<h1>${escapeHtml(title)}</h1><p class="error" role="alert">${escapeHtml(message)}</p>`);
}

/** A step that went well (e.g. an upstream account connected), with what to do next. */
export function successPage(title: string, message: string): string {
  return page(title, `<h1>${escapeHtml(title)}</h1><p role="status">${escapeHtml(message)}</p>`);
}

/**
 * A step that leaves the gateway for another site (e.g. an upstream's authorization
 * server): says where the user is going and why, and goes there only when they click. A
 * link, not a redirect: after a sign-in form, CSP form-action would block a redirect chain
 * that ends on another origin.
 */
export function continuePage(options: {
  title: string;
  message: string;
  href: string;
  label: string;
}): string {
  return page(
    options.title,
    `<h1>${escapeHtml(options.title)}</h1>
<p>${escapeHtml(options.message)}</p>
<a class="button" href="${escapeHtml(options.href)}">${escapeHtml(options.label)}</a>`,
  );
}
