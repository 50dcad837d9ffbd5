/**
 * The few pages the server renders itself (the sign-in hops and their errors): static
 * markup with escaped text, no script — the console's CSP forbids inline script anyway.
 */
const ESC: Record<string, string> = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' };
export const escapeHtml = (s: string) => s.replace(/[&<>"']/g, (c) => ESC[c]);

export function page(title: string, body: string, opts: { refreshTo?: string } = {}): string {
  const refresh = opts.refreshTo ? `<meta http-equiv="refresh" content="0;url=${escapeHtml(opts.refreshTo)}">` : '';
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">${refresh}
<title>${escapeHtml(title)} · Gatehouse</title><link rel="stylesheet" href="/ui/app.css"></head>
<body><main id="main" class="notice"><h1>${escapeHtml(title)}</h1>${body}</main></body></html>`;
}
