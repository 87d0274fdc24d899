// Compiled (not run) by types.test.js: the public API as a TypeScript user sees it.
import { Agent, Client, CookieJar, Progress, QuiverError, UdpTunnel, fetch as quiverFetch, request, version, errorKinds, native, type Cookie, type DiagnosticsMessages, type DispatchController, type DispatchHandler, type QuiverEvent, type RedirectRecord, type RequestAuth, type ResponseData, type Timings, type UdpTunnelOptions } from 'quiver-http'
import diagnosticsChannel from 'node:diagnostics_channel'
import { getGlobalDispatcher, interceptors, request as undiciRequest, setGlobalDispatcher, stream as undiciStream, type Dispatcher } from 'undici'
import { openAsBlob } from 'node:fs'
import { PassThrough, Readable } from 'node:stream'

async function demo(): Promise<void> {
  const client = new Client({
    protocol: 'http2',
    caFile: '/tmp/ca.crt',
    checkoutTimeout: 1000,
    requestTimeout: null,
    pools: { 'https://*.example.com': { size: 4, protocol: 'http1' } },
  })
  const ac = new AbortController()
  const res: ResponseData = await client.request('https://example.com/x', {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'x-many': ['1', '2'] },
    body: JSON.stringify({ a: 1 }),
    signal: ac.signal,
    timeout: 5000,
    readTimeout: 2000,
    checkoutTimeout: 500,
  })
  const status: number = res.statusCode
  const v: string = res.httpVersion
  const h: string | string[] | undefined = res.headers['content-type']
  const data = await res.body.json<{ a: number }>()
  const n: number = data.a
  for await (const chunk of res.body) {
    const b: Buffer = chunk
    void b
  }
  const readable: Readable = res.body.toReadable()
  const web = res.body.toWeb()
  void [status, v, h, n, readable, web, res.trailers]
  await client.request(new URL('http://x/'), { body: Readable.from(['a', 'b']) })
  await request('http://x/', { body: (async function* () { yield 'x' })() })
  const ch = await client.openDatagramChannel('https://example.com/udp', { protocol: 'connect-udp' })
  ch.send(Buffer.from('hi'))
  const d: Buffer | null = await ch.recv()
  const max: number | null = ch.maxDatagramSize
  await ch.close()
  void [d, max]
  const proxied = new Client({
    proxy: 'http://user:pass@proxy.example:3128',
    proxyAuthorization: 'Basic dXNlcjpwYXNz',
    proxyProtocol: 'http2',
    proxyFromEnv: false,
    pools: { 'https://direct.example': { proxy: 'none' }, 'https://masque.example': { protocol: 'http3', proxy: new URL('https://proxy.example'), proxyProtocol: 'http3' } },
  })
  const tunnelOptions: UdpTunnelOptions = { protocol: 'http2', headers: { 'proxy-authorization': 'Basic x' } }
  const tunnel: UdpTunnel = await proxied.openUdpTunnel('https://proxy.example', '127.0.0.1', 53, tunnelOptions)
  tunnel.send(Buffer.from('query'))
  const reply: Buffer | null = await tunnel.recv()
  const target: string = tunnel.target
  const maxPayload: number = tunnel.maxPayload
  for await (const payload of tunnel) {
    const b: Buffer = payload
    void b
  }
  await tunnel.close()
  tunnel.destroy()
  proxied.closeAllTunnels()
  void [reply, target, maxPayload, tunnel.ended, tunnel.statusCode, tunnel.headers]
  const stats: native.ClientStats = client.stats()
  const opened: number = stats.origins[0].connectionsOpened
  const proxyConnections: number = stats.proxies.reduce((n, p) => n + p.connections, 0)
  void [opened, proxyConnections]
  await client.close()
  try {
    await client.request('bad')
  } catch (e) {
    if (e instanceof QuiverError) {
      const code: string = e.code
      const cls: 'transient' | 'invalid' | 'unrecoverable' = e.class
      void [code, cls]
    }
  }
  const kinds = errorKinds.map(([kind, cls]) => `${kind}:${cls}`)
  void [kinds, version]
  await layer()
  await adapters()
  await observability()
}

/** Events (diagnostics_channel), timings, progress. */
async function observability(): Promise<void> {
  const client = new Client()
  const progress = new Progress()
  const res = await client.request('https://example.com/', { progress })
  const t: Timings = res.timings
  const ttfb: number = t.ttfb
  const total: number | null = t.total
  const dns: number | null = t.dns
  const protocol: 'http1' | 'http2' | 'http3' = t.protocol
  const port: number | undefined = t.remote?.port
  const done: number = progress.downloaded
  const expected: number | null = progress.downloadTotal
  void [ttfb, total, dns, protocol, port, done, expected, progress.uploaded, progress.uploadTotal]
  await quiverFetch('https://example.com/', { method: 'PUT', body: 'x', progress })
  diagnosticsChannel.subscribe('quiver:event', (message) => {
    const e = message as QuiverEvent
    if (e.name === 'response_headers') {
      const status: number = e.status
      void status
    } else if (e.name === 'request_failed') {
      const code: string = e.error.code
      void code
    }
    const when: number = e.time
    void when
  })
  diagnosticsChannel.subscribe('undici:request:create', (message) => {
    const { request: r } = message as DiagnosticsMessages['undici:request:create']
    r.addHeader('traceparent', '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01')
    const path: string = r.path
    void path
  })
  diagnosticsChannel.subscribe('quiver:request:timings', (message) => {
    const { timings } = message as DiagnosticsMessages['quiver:request:timings']
    const reused: boolean = timings.reused
    void reused
  })
  const agent = new Agent()
  agent.on('connect', (origin: URL, targets: Agent[]) => void [origin.host, targets.length])
  agent.on('disconnect', (origin, _targets, error) => void [origin.host, error.code])
  // @ts-expect-error: a Progress, not its numbers
  await client.request('https://example.com/', { progress: { uploaded: 0 } })
}

/** The drop-in adapters: an undici Dispatcher and fetch. */
async function adapters(): Promise<void> {
  const previous: Dispatcher = getGlobalDispatcher()
  const agent = new Agent({ protocol: 'http2', size: 64, caFile: '/tmp/ca.crt' })
  setGlobalDispatcher(agent)
  const res: Response = await fetch('https://example.com/', { method: 'POST', body: 'x' })
  void res
  const composed: Agent = agent.compose(interceptors.redirect({ maxRedirections: 3 }), interceptors.decompress())
  const retried: Dispatcher = agent.compose([interceptors.retry({ maxRetries: 2, errorCodes: ['connect_refused'] })])
  const { statusCode, body } = await undiciRequest('https://example.com/', { dispatcher: composed })
  void [statusCode, await body.text(), retried]
  await undiciStream('https://example.com/', { method: 'GET', dispatcher: agent }, () => new PassThrough())
  const handler: DispatchHandler = {
    onRequestStart(controller: DispatchController) {
      controller.pause()
      controller.resume()
    },
    onResponseStart(_c, status, headers) {
      void [status, headers['content-type']]
    },
    onResponseData(_c, chunk: Buffer) {
      void chunk
    },
    onResponseEnd() {},
    onResponseError(_c, err: Error) {
      void err
    },
  }
  const legacy: DispatchHandler = {
    onConnect() {},
    onHeaders: () => true,
    onData: () => false,
    onComplete() {},
    onError() {},
  }
  const accepted: boolean = agent.dispatch({ origin: 'https://example.com', path: '/', method: 'GET', headersTimeout: 1000 }, handler)
  agent.dispatch({ origin: new URL('https://example.com'), path: '/x', method: 'PUT', body: 'data', headers: ['a', 'b'] }, legacy)
  void [accepted, agent.closed, agent.destroyed, agent.stats().connections]
  setGlobalDispatcher(previous)
  await agent.close()
  await agent.destroy()
  // @ts-expect-error: an Agent keeps no cookie jar
  void new Agent({ cookies: true })

  const r: Response = await quiverFetch('https://example.com/', { redirect: 'manual', signal: AbortSignal.timeout(1000) })
  const url: string = r.url
  const redirected: boolean = r.redirected
  const mine = quiverFetch.withClient(new Client({ protocol: 'http3' }))
  const r2: Response = await mine(new URL('https://example.com/'), { method: 'PUT', body: new Blob(['x']) })
  void [url, redirected, r2]
}

/** The client layer: redirects, decoding, cookies, credentials, forms. */
async function layer(): Promise<void> {
  const client = new Client({
    followRedirects: true,
    maxRedirects: 5,
    allowInsecureRedirects: false,
    decompress: true,
    maxDecompressionRatio: 1000,
    cookies: true,
    basicAuth: 'user:password',
    pools: { 'https://api.example.com': { bearerToken: 't0k', digestAuth: null, maxRedirects: 0 } },
  })
  const form = new FormData()
  form.append('title', 'holiday')
  form.append('photo', await openAsBlob('/tmp/photo.jpg', { type: 'image/jpeg' }), 'photo.jpg')
  const auth: RequestAuth = { digest: ['user', 'password'] }
  const res = await client.request('https://example.com/upload', {
    method: 'POST',
    body: form,
    redirect: 'manual',
    maxRedirections: 0,
    decompress: false,
    auth,
    protocol: 'http2',
    cookies: { session: 'abc', n: 1 },
  })
  const url: string = res.url
  const redirected: boolean = res.redirected
  const first: RedirectRecord | undefined = res.history[0]
  const location: string | string[] | undefined = first?.headers.location
  const why: string | null = res.unfollowedRedirect
  void [url, redirected, first?.statusCode, first?.httpVersion, location, why]
  await client.request('https://example.com/', { auth: null, redirect: 'error', maxRedirects: 3 })
  await client.request('https://example.com/', { auth: { bearer: 't' }, body: new Blob(['x'], { type: 'text/plain' }) })
  await client.request('https://example.com/', { auth: { basic: ['u', 'p'] }, cookies: new Map([['a', '1']]) })
  const jar: CookieJar | null = client.cookies
  if (jar !== null) {
    jar.set('https://example.com/', 'a=1; Path=/')
    jar.set(new URL('https://example.com/'), 'b=2')
    const all: Cookie[] = jar.list()
    const sent: Cookie[] = jar.get('https://example.com/x')
    const expires: Date | null = all[0].expires
    const sameSite: string | null = all[0].sameSite
    const hostOnly: boolean = sent[0].hostOnly
    const removed: boolean = jar.delete('example.com', '/', 'a')
    jar.clear('example.com')
    jar.clear()
    const file: string = jar.exportNetscape()
    const stored: number = jar.importNetscape(file)
    void [expires, sameSite, hostOnly, removed, stored]
  }
  try {
    await client.request('https://example.com/loop')
  } catch (e) {
    if (e instanceof QuiverError && (e.code === 'too_many_redirects' || e.code === 'decompression_bomb')) {
      const cls: 'unrecoverable' | 'transient' | 'invalid' = e.class
      void cls
    }
  }
  // @ts-expect-error: not a redirect mode
  await client.request('https://example.com/', { redirect: 'sometimes' })
  // @ts-expect-error: one scheme at a time, with its own shape
  await client.request('https://example.com/', { auth: { basic: 'u:p' } })
  // @ts-expect-error: the jar is client-wide, not per rule
  void new Client({ pools: { 'https://a.example': { cookies: true } } })
}
void demo
