// A tiny static server for this example: `node examples/spa/serve.mjs`, then open
// http://localhost:3000 (PORT changes the port). No dependencies. It listens on the
// loopback address only, like the API with the committed app.env.
//
// It serves the files of this folder only (not its subfolders), with the right
// Content-Type: browsers refuse to run a module script served as anything but JavaScript.
// The pages of the service's mail links (/verify-email, /reset-password, /confirm-email)
// are index.html too: the app picks the view from the path. The one exception to "this
// folder only" is the QR code encoder that `npm ci` in this folder installs, served at its
// own path under node_modules/ (so that any static server of this folder serves it too).
import { createServer } from 'node:http';
import { readFile } from 'node:fs/promises';
import { extname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const ROOT = fileURLToPath(new URL('.', import.meta.url));

// The app's own paths, all answered with index.html.
const PAGES = new Set(['/', '/verify-email', '/reset-password', '/confirm-email']);

// Files of npm packages that the page loads: these paths exactly, nothing else of node_modules.
const PACKAGE_FILES = new Set(['/node_modules/qrcode-generator/dist/qrcode.mjs']);

const TYPES = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.png': 'image/png',
  '.svg': 'image/svg+xml',
  '.ico': 'image/x-icon',
};

async function handle(request, response) {
  if (request.method !== 'GET' && request.method !== 'HEAD') {
    response.writeHead(405, { Allow: 'GET, HEAD' }).end();
    return;
  }
  const { pathname } = new URL(request.url, 'http://localhost');
  const packageFile = PACKAGE_FILES.has(pathname);
  let name = decodeURIComponent(pathname.slice(1));
  if (PAGES.has(pathname)) name = 'index.html';
  const type = packageFile ? TYPES['.js'] : TYPES[extname(name)];
  // One plain file name (no folders, no "..", no dot files), or a listed package file.
  if (!type || !(packageFile || /^[\w-][\w.-]*$/.test(name))) {
    response.writeHead(404, { 'Content-Type': 'text/plain' }).end('not found\n');
    return;
  }
  let body;
  try {
    body = await readFile(join(ROOT, name));
  } catch {
    const hint = packageFile ? 'not installed: run `npm ci --prefix examples/spa`\n' : 'not found\n';
    response.writeHead(404, { 'Content-Type': 'text/plain' }).end(hint);
    return;
  }
  response.writeHead(200, {
    'Content-Type': type,
    'Content-Length': body.length,
    'Cache-Control': 'no-cache',
    'X-Content-Type-Options': 'nosniff',
    // The link pages have a token in their address (index.html says so too).
    'Referrer-Policy': 'no-referrer',
  });
  response.end(request.method === 'HEAD' ? undefined : body);
}

/** Starts the server; resolves with it once it listens. */
export function serve({ port = 3000 } = {}) {
  const server = createServer((request, response) => {
    handle(request, response).catch(() => {
      if (!response.headersSent) response.writeHead(500);
      response.end();
    });
  });
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, '127.0.0.1', () => resolve(server));
  });
}

if (import.meta.url === pathToFileURL(process.argv[1]).href) {
  const port = Number(process.env.PORT || 3000);
  await serve({ port });
  console.log(`example SPA on http://localhost:${port} (Ctrl-C to stop)`);
}
