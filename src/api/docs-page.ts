type JsonObject = Record<string, unknown>;

function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);
}

/**
 * A self-contained HTML reference rendered from the OpenAPI document: no scripts and no
 * assets from elsewhere, so it works on an air-gapped cluster.
 */
export function renderDocsPage(document: JsonObject): string {
  const info = document.info as { title: string; version: string; description: string };
  const paths = document.paths as Record<string, Record<string, JsonObject>>;
  const sections: string[] = [];
  for (const [path, operations] of Object.entries(paths).sort(([a], [b]) => a.localeCompare(b))) {
    for (const [method, op] of Object.entries(operations)) {
      const parameters = (op.parameters as JsonObject[] | undefined) ?? [];
      const body = (op.requestBody as { content: Record<string, { schema: unknown }> } | undefined)?.content['application/json']?.schema;
      const responses = Object.entries(op.responses as Record<string, { description?: string; $ref?: string }>)
        .map(([status, r]) => `<li><code>${escapeHtml(status)}</code> ${escapeHtml(r.description ?? 'problem+json')}</li>`)
        .join('');
      sections.push(`<section id="${escapeHtml(String(op.operationId))}">
<h2><span class="method ${method}">${method.toUpperCase()}</span> <code>${escapeHtml(path)}</code></h2>
<p>${escapeHtml(String(op.summary ?? ''))}</p>
${op.description ? `<p>${escapeHtml(String(op.description))}</p>` : ''}
<p class="meta">${(op.security as unknown[]).length ? 'Requires a bearer token.' : 'No authentication.'}</p>
${parameters.length ? `<h3>Parameters</h3><ul>${parameters.map((p) => `<li><code>${escapeHtml(String(p.name))}</code> (${escapeHtml(String(p.in))}${p.required ? ', required' : ''}) ${escapeHtml(String(p.description ?? ''))}</li>`).join('')}</ul>` : ''}
${body ? `<h3>Request body</h3><pre>${escapeHtml(JSON.stringify(body, null, 2))}</pre>` : ''}
<h3>Responses</h3><ul>${responses}</ul>
</section>`);
    }
  }
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>${escapeHtml(info.title)} API</title>
<style>body{font:15px/1.5 system-ui,sans-serif;max-width:60rem;margin:2rem auto;padding:0 1rem;color:#1b1f24}
section{border-top:1px solid #d0d7de;padding:.5rem 0}pre{background:#f6f8fa;padding:.75rem;overflow:auto;font-size:13px}
.method{display:inline-block;min-width:4rem;font-size:13px;padding:.1rem .4rem;border-radius:4px;color:#fff;background:#57606a}
.get{background:#0969da}.post{background:#1a7f37}.patch{background:#9a6700}.delete{background:#cf222e}.meta{color:#57606a}</style></head>
<body><h1>${escapeHtml(info.title)} <small>${escapeHtml(info.version)}</small></h1>
<p>${escapeHtml(info.description)}</p><p>Machine-readable: <a href="/openapi.json">/openapi.json</a> (OpenAPI 3.1). Errors are <code>application/problem+json</code> (RFC 9457).</p>
${sections.join('\n')}
</body></html>
`;
}
