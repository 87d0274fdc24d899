#!/usr/bin/env node
// Node clients of Quiver's benchmark harness: one run, one JSON line on stdout.
//
//   node bench_node.mjs --client undici|undici-h2|undici-agent|fetch|fetch-agent|quiver|fetch+quiver
//     --url URL [--requests N]
//     [--concurrency C] [--ca FILE] [--protocol auto|http1|http2|http3] [--expect-len BYTES]
//     [--method GET|POST] [--body-len B] [--duration SECS] [--pool-size P] [--warmup W] [--stream]
//
// Same flags and JSON keys as quiver-bench-rust (bench/README.md, "The client contract").
// Every response is verified (2xx status and body length); failures are counted.
//
// - undici: `request()` through a Pool of `connections: pool size` (HTTP/1.1).
// - undici-h2: `request()` through a Pool with allowH2 and one connection for h2 over TLS (ALPN),
//   undici's H2CClient for h2c (prior knowledge); `pipelining: C` streams on the connection.
// - undici-agent: `request()` through an Agent of `connections: pool size` per origin (HTTP/1.1),
//   what undici's `request(url)` and `fetch` use underneath, with the origin routing on top.
// - fetch-agent: undici's own `fetch` (the npm package, not Node's bundled copy) with
//   `dispatcher: new Agent({ connections: pool size })`: the WHATWG layer over a capped pool.
// - fetch: Node's global fetch (its bundled undici, default agent: no per-origin connection cap).
//   It reads the CA from NODE_EXTRA_CA_CERTS (the harness sets it); --ca is checked to match.
//   In pool mode (pool size < concurrency) a semaphore of pool-size permits stands in front,
//   since the default agent has no cap (reported in `note`).
// - quiver: quiver-http's Client({ size: pool size, protocol, caFile, checkoutTimeout: 120 s }),
//   client.request(url) -> { statusCode, httpVersion, body }; body.bytes() or `for await`.
// - fetch+quiver: the global fetch after undici's setGlobalDispatcher(new quiver.Agent(...)),
//   the same pool options as quiver (so HTTP/2 and HTTP/3 too).
import { readFileSync } from 'node:fs';
import { performance } from 'node:perf_hooks';
import { pathToFileURL } from 'node:url';
import { join } from 'node:path';

const UNSUPPORTED = 3; // exit status: this client cannot do what was asked (harness says "n/a")


// quiver-http, or another build of it: QUIVER_NODE_PACKAGE names a package folder (the
// quiver-node-base row, a before/after comparison in one run).
function importQuiver() {
  const dir = process.env.QUIVER_NODE_PACKAGE;
  return dir ? import(pathToFileURL(join(dir, 'index.mjs')).href) : import('quiver-http');
}

function usage(msg) {
  process.stderr.write(`bench_node: ${msg}\n`);
  process.stderr.write('usage: node bench_node.mjs --client undici|undici-h2|undici-agent|fetch|fetch-agent|quiver|fetch+quiver --url URL [--requests N] ' +
    '[--concurrency C] [--ca FILE] [--protocol auto|http1|http2|http3] [--expect-len B] [--method M] ' +
    '[--body-len B] [--duration S] [--pool-size P] [--warmup W] [--stream]\n');
  process.exit(2);
}

function parseArgs(argv) {
  const a = {
    client: null, url: null, requests: 10000, concurrency: 32, ca: null, protocol: 'auto',
    expectLen: null, method: 'GET', bodyLen: 0, duration: null, poolSize: null, warmup: null,
    stream: false,
  };
  const nums = {
    '--requests': 'requests', '--concurrency': 'concurrency', '--expect-len': 'expectLen',
    '--body-len': 'bodyLen', '--duration': 'duration', '--pool-size': 'poolSize', '--warmup': 'warmup',
  };
  const strs = { '--client': 'client', '--url': 'url', '--ca': 'ca', '--protocol': 'protocol', '--method': 'method' };
  for (let i = 0; i < argv.length; i++) {
    const f = argv[i];
    if (f === '--stream') { a.stream = true; continue; }
    if (!(f in nums) && !(f in strs)) usage(`unknown flag ${f}`);
    if (i + 1 >= argv.length) usage(`${f} needs a value`);
    const v = argv[++i];
    if (f in nums) {
      const n = Number(v);
      if (!Number.isFinite(n) || n < 0) usage(`${f}: not a number: ${v}`);
      a[nums[f]] = n;
    } else {
      a[strs[f]] = v;
    }
  }
  if (!a.url) usage('--url is required');
  if (!a.client) usage('--client is required');
  if (a.concurrency < 1 || (a.poolSize !== null && a.poolSize < 1)) usage('--concurrency and --pool-size must be at least 1');
  if (a.poolSize === null) a.poolSize = a.concurrency;
  if (a.warmup === null) a.warmup = a.stream ? 0 : Math.min(a.poolSize, a.concurrency);
  return a;
}

function unsupported(msg) {
  process.stderr.write(`${msg}\n`);
  process.exit(UNSUPPORTED);
}

class Semaphore {
  constructor(n) { this.n = n; this.waiters = []; }
  async acquire() {
    if (this.n > 0) { this.n--; return; }
    await new Promise((resolve) => this.waiters.push(resolve));
  }
  release() {
    const w = this.waiters.shift();
    if (w) w(); else this.n++;
  }
}

async function makeClient(a) {
  const url = new URL(a.url);
  const tls = url.protocol === 'https:';
  const body = a.bodyLen ? Buffer.alloc(a.bodyLen, 'x') : undefined;
  const ca = a.ca ? readFileSync(a.ca) : undefined;
  const path = url.pathname + url.search;
  if (a.client === 'undici' || a.client === 'undici-h2') {
    const { Pool, H2CClient } = await import('undici');
    const h2 = a.client === 'undici-h2';
    if (a.protocol === 'http3') unsupported('undici has no HTTP/3');
    if (h2 && a.protocol === 'http1') unsupported('undici-h2 is the HTTP/2 row (use undici for HTTP/1.1)');
    if (!h2 && a.protocol === 'http2') unsupported('undici (without allowH2) speaks HTTP/1.1 only: see undici-h2');
    const opts = { connect: tls ? { ca } : undefined };
    let pool;
    if (h2) {
      // One connection, up to 100 streams on it (h2o allows 100 at a time); more callers wait
      // in undici. Asking for more streams than the server's limit makes undici open them all
      // before the server's SETTINGS arrive, and the ones over the limit fail.
      const streams = Math.min(a.concurrency, 100);
      Object.assign(opts, { pipelining: streams, maxConcurrentStreams: streams });
      // h2c: a Pool with allowH2 + useH2c still speaks HTTP/1.1 on cleartext (seen in the
      // server's log), so h2c goes through undici's H2CClient (prior knowledge, one connection).
      pool = tls ? new Pool(url.origin, { ...opts, connections: 1, allowH2: true })
        : new H2CClient(url.origin, opts);
    } else {
      pool = new Pool(url.origin, { ...opts, connections: a.poolSize, pipelining: 1 });
    }
    const one = async () => {
      const r = await pool.request({ path, method: a.method, body });
      let n = 0;
      if (a.stream) {
        for await (const chunk of r.body) n += chunk.length;
      } else {
        n = (await r.body.arrayBuffer()).byteLength;
      }
      return [r.statusCode, n, null];
    };
    return { one, close: () => pool.close(), note: null };
  }
  if (a.client === 'undici-agent' || a.client === 'fetch-agent') {
    // undici's Agent: one Pool per origin, at most `connections` each (HTTP/1.1 here, like the
    // undici row; undici-h2 is the HTTP/2 row). It trusts the bench CA through `connect.ca`.
    const { Agent, fetch: undiciFetch } = await import('undici');
    if (a.protocol !== 'http1' && a.protocol !== 'auto') unsupported(`${a.client} speaks HTTP/1.1 only here (asked for ${a.protocol})`);
    const agent = new Agent({ connections: a.poolSize, pipelining: 1, connect: tls ? { ca } : undefined });
    const viaFetch = a.client === 'fetch-agent';
    const one = async () => {
      let status; let n = 0;
      if (viaFetch) {
        const r = await undiciFetch(a.url, { method: a.method, body, dispatcher: agent });
        status = r.status;
        if (a.stream) {
          for await (const chunk of r.body) n += chunk.length;
        } else {
          n = (await r.arrayBuffer()).byteLength;
        }
      } else {
        const r = await agent.request({ origin: url.origin, path, method: a.method, body });
        status = r.statusCode;
        if (a.stream) {
          for await (const chunk of r.body) n += chunk.length;
        } else {
          n = (await r.body.arrayBuffer()).byteLength;
        }
      }
      return [status, n, null];
    };
    return { one, close: () => agent.close(), note: null };
  }
  if (a.client === 'fetch') {
    if (a.protocol !== 'http1' && a.protocol !== 'auto') unsupported(`Node's global fetch speaks HTTP/1.1 only here (asked for ${a.protocol})`);
    if (tls && a.ca && !(process.env.NODE_EXTRA_CA_CERTS || '').length) {
      unsupported('global fetch reads its CA from NODE_EXTRA_CA_CERTS, which is not set');
    }
    const sem = a.poolSize < a.concurrency ? new Semaphore(a.poolSize) : null;
    const one = async () => {
      if (sem) await sem.acquire();
      try {
        const r = await fetch(a.url, { method: a.method, body });
        let n = 0;
        if (a.stream) {
          for await (const chunk of r.body) n += chunk.length;
        } else {
          n = (await r.arrayBuffer()).byteLength;
        }
        return [r.status, n, null];
      } finally {
        if (sem) sem.release();
      }
    };
    const note = sem ? `semaphore(${a.poolSize}) in front: the global fetch agent has no per-origin connection cap` : null;
    return { one, close: async () => {}, note };
  }
  if (a.client === 'fetch+quiver') {
    // Node's global fetch, its dispatcher swapped for quiver's Agent with the quiver row's pool
    // options (undici's setGlobalDispatcher: the one line a user changes).
    let quiver;
    try {
      quiver = await importQuiver();
    } catch (e) {
      unsupported(`the quiver Node binding is not installed: ${e.message}`);
    }
    if (typeof quiver.Agent !== 'function') unsupported('this quiver-http has no Agent');
    const { setGlobalDispatcher } = await import('undici');
    const agent = new quiver.Agent(quiverOptions(a));
    setGlobalDispatcher(agent);
    const one = async () => {
      const r = await fetch(a.url, { method: a.method, body });
      let n = 0;
      if (a.stream) {
        for await (const chunk of r.body) n += chunk.length;
      } else {
        n = (await r.arrayBuffer()).byteLength;
      }
      return [r.status, n, null];
    };
    return { one, close: () => agent.close(), note: null };
  }
  if (a.client === 'quiver') {
    // quiver-http (bindings/node), the release build bench/run.sh installs into
    // bench/node/node_modules. The pool options of the Rust row (camelCase, durations in ms).
    let quiver;
    try {
      quiver = await importQuiver();
    } catch (e) {
      unsupported(`the quiver Node binding is not installed: ${e.message}`);
    }
    const client = new quiver.Client(quiverOptions(a));
    const one = async () => {
      const r = await client.request(a.url, { method: a.method, body });
      let n = 0;
      if (a.stream) {
        for await (const chunk of r.body) n += chunk.length;
      } else {
        n = (await r.body.bytes()).byteLength;
      }
      return [r.statusCode, n, r.httpVersion];
    };
    return { one, close: () => client.close(), note: null };
  }
  usage(`unknown client ${a.client}`);
}

// The quiver rows' pool options: those of the Rust row (camelCase, durations in ms).
function quiverOptions(a) {
  const opts = { size: a.poolSize, protocol: a.protocol, checkoutTimeout: 120000 };
  if (a.ca) opts.caFile = a.ca;
  return opts;
}

function protoName(v) {
  if (v == null) return null;
  const s = String(v);
  if (s.startsWith('3') || s.includes('/3') || s === 'h3') return 'h3';
  if (s.startsWith('2') || s.includes('/2') || s === 'h2') return 'h2';
  return 'h1';
}

async function main() {
  const a = parseArgs(process.argv.slice(2));
  const { one, close, note } = await makeClient(a);
  const st = { failures: 0, bytes: 0, protos: new Set() };
  const check = async () => {
    let status = 0; let n = 0; let ver = null; let err = null;
    try {
      [status, n, ver] = await one();
    } catch (e) {
      err = e;
    }
    const ok = err === null && status >= 200 && status < 300 && (a.expectLen === null || n === a.expectLen);
    if (ok) {
      st.bytes += n;
      const p = protoName(ver);
      if (p) st.protos.add(p);
    } else {
      if (st.failures === 0) {
        process.stderr.write(err !== null
          ? `request failed: ${err && (err.stack || err.message || err)}${err && err.cause ? ` (cause: ${err.cause})` : ''}\n`
          : `bad response: status ${status}, ${n} bytes (expected ${a.expectLen})\n`);
      }
      st.failures++;
    }
    return ok;
  };

  if (a.warmup > 0) {
    await Promise.all(Array.from({ length: a.warmup }, check)); // its failures count like the others
    st.bytes = 0;
  }

  const lat = [];
  let next = 0;
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  const deadline = a.duration ? t0 + a.duration * 1000 : null;
  const worker = async () => {
    while (next++ < a.requests) {
      const t = performance.now();
      if (deadline !== null && t >= deadline) return;
      await check();
      lat.push(performance.now() - t);
    }
  };
  await Promise.all(Array.from({ length: a.concurrency }, worker));
  const secs = (performance.now() - t0) / 1000;
  const cpu = process.cpuUsage(cpu0);
  const cpuS = (cpu.user + cpu.system) / 1e6;
  lat.sort((x, y) => x - y);
  const n = lat.length;
  const pct = (p) => (n ? lat[Math.min(Math.floor(n * p), n - 1)] : 0);
  process.stdout.write(JSON.stringify({
    client: a.client,
    requests: n,
    failures: st.failures,
    seconds: secs,
    rps: n / secs,
    p50_ms: pct(0.5),
    p99_ms: pct(0.99),
    cpu_s_per_10k: n ? cpuS * 10000 / n : 0,
    peak_rss_bytes: process.resourceUsage().maxRSS * 1024,
    warmup: a.warmup,
    bytes: st.bytes,
    mb_per_s: st.bytes / secs / 1e6,
    proto: [...st.protos].sort().join('+'),
    note,
  }) + '\n');
  await close();
  process.exit(0);
}

main().catch((e) => {
  process.stderr.write(`bench_node: ${e && (e.stack || e)}\n`);
  process.exit(1);
});
