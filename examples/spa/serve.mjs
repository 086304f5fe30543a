// A tiny static server for this example: `node examples/spa/serve.mjs`, then open
// http://localhost:3000 (PORT changes the port). No dependencies. It listens on the
// loopback address only, like the API with the committed app.env.
//
// It serves the files of this folder only (not its subfolders), with the right
// Content-Type: browsers refuse to run a module script served as anything but JavaScript.
// The pages of the service's mail links (/verify-email, /reset-password, /confirm-email)
// are index.html too: the app picks the view from the path.
import { createServer } from 'node:http';
import { readFile } from 'node:fs/promises';
import { extname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const ROOT = fileURLToPath(new URL('.', import.meta.url));

// The app's own paths, all answered with index.html.
const PAGES = new Set(['/', '/verify-email', '/reset-password', '/confirm-email']);

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
  const name = PAGES.has(pathname) ? 'index.html' : decodeURIComponent(pathname.slice(1));
  const type = TYPES[extname(name)];
  // One plain file name: no folders, no "..", no dot files.
  if (!type || !/^[\w-][\w.-]*$/.test(name)) {
    response.writeHead(404, { 'Content-Type': 'text/plain' }).end('not found\n');
    return;
  }
  let body;
  try {
    body = await readFile(join(ROOT, name));
  } catch {
    response.writeHead(404, { 'Content-Type': 'text/plain' }).end('not found\n');
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
