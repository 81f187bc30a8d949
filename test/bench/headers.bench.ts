// Upstream header building and path normalisation micro-benchmark:
// `node test/bench/headers.bench.ts [calls per batch, default 20000]`.
//
// Cases: a typical browser request (12 headers, Chrome-like, HTTP/1.1), the same with an
// existing X-Forwarded-For and a Connection header naming a custom header (the rare removal
// path), an HTTP/2 request with pseudo-headers and split cookies, a 20-header upstream response
// filtered from undici Buffers, and normalizeRequestPath on a clean and a dirty path.
//
// Each figure is the median over batches of the mean ns per call (process.hrtime.bigint around a
// batch), after a warm-up; results are summed into a sink so nothing is optimised away.

import {
  buildUpstreamHeaders,
  type ForwardContext,
  filterResponseHeaders,
} from '../../lib/proxy/forward-headers.ts';
import { normalizeRequestPath } from '../../lib/proxy/request-path.ts';

const perBatch = Number(process.argv[2] ?? 20_000) || 20_000;
const batches = 40;

const browser = [
  'Host',
  'shop.example.com',
  'Connection',
  'keep-alive',
  'sec-ch-ua',
  '"Chromium";v="131", "Not_A Brand";v="24"',
  'sec-ch-ua-mobile',
  '?0',
  'sec-ch-ua-platform',
  '"Linux"',
  'Upgrade-Insecure-Requests',
  '1',
  'User-Agent',
  'Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36',
  'Accept',
  'text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,image/webp,*/*;q=0.8',
  'Sec-Fetch-Site',
  'none',
  'Accept-Encoding',
  'gzip, deflate, br, zstd',
  'Accept-Language',
  'en-GB,en;q=0.9',
  'Cookie',
  'session=4f1c2b1e9c3a4d8ea1f03b5c7d9e0a12; theme=dark',
];

const chained = [
  ...browser,
  'X-Forwarded-For',
  '203.0.113.7, 10.0.0.2',
  'Connection',
  'X-Hop-Secret',
  'X-Hop-Secret',
  'x',
];

const http2 = [
  ':method',
  'GET',
  ':authority',
  'shop.example.com',
  ':scheme',
  'https',
  ':path',
  '/products/42?ref=home',
  ...browser.slice(4),
  'cookie',
  'consent=yes',
];

const ctx: ForwardContext = {
  remoteAddress: '::ffff:198.51.100.23',
  tls: false,
  httpVersion: '1.1',
  localPort: 9999,
  localIp: '10.0.0.5',
  requestId: { header: 'X-Request-Id', value: '6f1c2b1e-9c3a-4d8e-a1f0-3b5c7d9e0a12' },
};
const tlsCtx: ForwardContext = {
  ...ctx,
  tls: true,
  httpVersion: '2.0',
  tlsVersion: 'TLSv1.3',
  tlsCipher: 'TLS_AES_128_GCM_SHA256',
};

const response: Buffer[] = [];
for (const [n, v] of [
  ['Content-Type', 'text/html; charset=utf-8'],
  ['Content-Length', '18342'],
  ['Connection', 'keep-alive'],
  ['Keep-Alive', 'timeout=5'],
  ['Date', 'Mon, 23 Nov 2026 18:00:00 GMT'],
  ['Cache-Control', 'private, max-age=0'],
  ['ETag', 'W/"47a6-18c1f2"'],
  ['Vary', 'Accept-Encoding'],
  ['Server', 'nginx'],
  ['Set-Cookie', 'a=1; Path=/; HttpOnly'],
  ['Set-Cookie', 'b=2; Path=/; Secure'],
  ['Strict-Transport-Security', 'max-age=31536000'],
  ['X-Content-Type-Options', 'nosniff'],
  ['X-Frame-Options', 'DENY'],
  ['Referrer-Policy', 'strict-origin-when-cross-origin'],
  ['Content-Security-Policy', "default-src 'self'"],
  ['Last-Modified', 'Mon, 23 Nov 2026 17:00:00 GMT'],
  ['Accept-Ranges', 'bytes'],
  ['X-Request-Id', 'abc'],
  ['Age', '0'],
] as const) {
  response.push(Buffer.from(n), Buffer.from(v));
}

let sink = 0;

function measure(label: string, run: () => number): void {
  for (let i = 0; i < 3; i++) run();
  const samples: number[] = [];
  for (let b = 0; b < batches; b++) {
    const t0 = process.hrtime.bigint();
    sink += run();
    samples.push(Number(process.hrtime.bigint() - t0) / perBatch);
  }
  samples.sort((a, b) => a - b);
  const median = samples[samples.length >> 1] ?? Number.NaN;
  const best = samples[0] ?? Number.NaN;
  console.log(`${label.padEnd(58)} ${median.toFixed(0).padStart(6)} ns/call (best ${best.toFixed(0)})`);
}

function headersLoop(raw: readonly string[], c: ForwardContext): () => number {
  return () => {
    let n = 0;
    for (let i = 0; i < perBatch; i++) n += buildUpstreamHeaders(raw, c).length;
    return n;
  };
}

console.log(`node ${process.version}, ${perBatch} calls per batch, median of ${batches} batches`);
measure('buildUpstreamHeaders: browser request, 12 headers', headersLoop(browser, ctx));
measure('buildUpstreamHeaders: + X-Forwarded-For chain + Connection-named', headersLoop(chained, ctx));
measure('buildUpstreamHeaders: HTTP/2 over TLS, pseudo-headers, 2 cookies', headersLoop(http2, tlsCtx));
measure('filterResponseHeaders: 20 headers from undici Buffers', () => {
  let n = 0;
  for (let i = 0; i < perBatch; i++) n += filterResponseHeaders(response).length;
  return n;
});
measure('normalizeRequestPath: clean /api/v1/users/42/profile', () => {
  let n = 0;
  for (let i = 0; i < perBatch; i++) n += (normalizeRequestPath('/api/v1/users/42/profile') ?? '').length;
  return n;
});
measure('normalizeRequestPath: dirty /api%2F..%2Fv2//users/./42/', () => {
  let n = 0;
  for (let i = 0; i < perBatch; i++) n += (normalizeRequestPath('/api%2F..%2Fv2//users/./42/') ?? '').length;
  return n;
});
if (sink === 0) console.log('(sink)');
