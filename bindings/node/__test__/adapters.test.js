'use strict'
// The drop-in adapters against the loopback test server, over HTTP/1.1, HTTP/2 (the https
// listener, ALPN, with the test CA) and HTTP/3: quiver.Agent under Node's global fetch and under
// npm undici (request, stream, fetch, the redirect, retry and decompress interceptors), the
// dispatch contract itself (both handler styles, backpressure, abort, close/destroy), and
// quiver.fetch. Every test puts the global dispatcher back as it found it.

const assert = require('node:assert/strict')
const { Readable, Writable } = require('node:stream')
const { before, after, beforeEach, afterEach, describe, test } = require('node:test')

const undici = require('undici')
const { Agent, Client, QuiverError, fetch: quiverFetch } = require('quiver-http')
const { startServer, protocols, pattern, checkPattern, sleep, closedPort } = require('./helpers.js')

const MiB = 1024 * 1024

let info
let control // a plain client for the server's /stats
before(async () => {
  info = await startServer()
  control = new Client()
})
after(async () => {
  await control.close()
  await info.stop()
})

let savedDispatcher
beforeEach(() => {
  savedDispatcher = undici.getGlobalDispatcher()
})
afterEach(() => {
  undici.setGlobalDispatcher(savedDispatcher)
})

async function serverStats() {
  const res = await control.request(`http://127.0.0.1:${info.http}/stats`)
  return res.body.json()
}

async function resetStats() {
  await (await control.request(`http://127.0.0.1:${info.http}/stats/reset`, { method: 'POST' })).body.dump()
}

/**
 * Waits until the server's `bytes_sent` stops growing (two samples 300 ms apart within 64 KiB of
 * each other: each /stats answer counts too); returns it.
 */
async function sentSettles() {
  let last = -Infinity
  const until = Date.now() + 30000
  while (Date.now() < until) {
    const { bytes_sent: sent } = await serverStats()
    if (sent - last < 65536) return sent
    last = sent
    await sleep(300)
  }
  assert.fail(`bytes_sent kept growing (${last})`)
}

/** Reads a web stream to its end, checking the test server's byte pattern; returns the length. */
async function readPattern(stream) {
  let offset = 0
  for await (const chunk of stream) offset = checkPattern(chunk, offset)
  return offset
}

function chunks(n, size) {
  return Array.from({ length: n }, (_, i) => pattern(i * size, size))
}

test('quiver-http exports Agent and fetch; an Agent keeps no cookie jar', () => {
  assert.equal(typeof Agent, 'function')
  assert.equal(typeof quiverFetch, 'function')
  assert.equal(typeof quiverFetch.withClient, 'function')
  assert.throws(() => new Agent({ cookies: true }), (e) => e instanceof QuiverError && e.code === 'invalid_config')
  assert.throws(() => new Agent({ size: -1 }), (e) => e instanceof QuiverError && e.code === 'invalid_config')
  assert.throws(() => quiverFetch.withClient({}), TypeError)
})

test('per-request readTimeout and checkoutTimeout', async () => {
  const client = new Client({ size: 1 })
  try {
    const url = (p) => `http://127.0.0.1:${info.http}${p}`
    await assert.rejects(client.request(url('/slow/3000'), { readTimeout: 200 }),
      (e) => e instanceof QuiverError && e.code === 'read_timeout')
    // The one connection is busy with a slow request: the next one waits for it 200 ms at most.
    await (await client.request(url('/health'))).body.dump()
    const ac = new AbortController()
    const holder = client.request(url('/slow/3000'), { signal: ac.signal }).catch((e) => e)
    while (client.stats().active < 1) await sleep(10)
    await assert.rejects(client.request(url('/health'), { checkoutTimeout: 200 }),
      (e) => e instanceof QuiverError && e.code === 'checkout_timeout')
    ac.abort()
    assert.equal((await holder).code, 'cancelled')
    for (const bad of [{ readTimeout: 0 }, { checkoutTimeout: -1 }, { readTimeout: 'x' }, { checkoutTimeout: Infinity }]) {
      await assert.rejects(client.request(url('/health'), bad), (e) => e.code === 'invalid_config', JSON.stringify(bad))
    }
  } finally {
    await client.close()
  }
})

test('errors: a refused port rejects fetch with a TypeError whose cause is the QuiverError', async () => {
  const port = await closedPort()
  const agent = new Agent()
  undici.setGlobalDispatcher(agent)
  await assert.rejects(fetch(`http://127.0.0.1:${port}/`), (e) => {
    assert.ok(e instanceof TypeError)
    assert.equal(e.message, 'fetch failed')
    assert.ok(e.cause instanceof QuiverError)
    assert.equal(e.cause.code, 'connect_refused')
    assert.equal(e.cause.class, 'transient')
    return true
  })
  await assert.rejects(undici.fetch(`http://127.0.0.1:${port}/`), (e) => e instanceof TypeError && e.cause?.code === 'connect_refused')
  await assert.rejects(undici.request(`http://127.0.0.1:${port}/`), (e) => e instanceof QuiverError && e.code === 'connect_refused')
  await assert.rejects(quiverFetch(`http://127.0.0.1:${port}/`), (e) => e instanceof TypeError && e.cause?.code === 'connect_refused')
  await agent.close()
})

test('the global dispatcher may also be set without undici, by its symbol', async () => {
  const agent = new Agent()
  globalThis[Symbol.for('undici.globalDispatcher.1')] = agent
  const res = await fetch(`http://127.0.0.1:${info.http}/headers`)
  assert.equal(res.status, 200)
  // quiver, not undici: no connection header, and quiver's pool has the connection.
  assert.equal((await res.json()).version, 'HTTP/1.1')
  assert.equal(agent.stats().connections, 1)
  await agent.close()
})

test('what the Agent refuses: maxRedirections, CONNECT, upgrades, framing headers', async () => {
  const agent = new Agent()
  const origin = `http://127.0.0.1:${info.http}`
  await assert.rejects(undici.request(`${origin}/redirect/1`, { dispatcher: agent, maxRedirections: 2 }),
    (e) => e instanceof QuiverError && e.code === 'invalid_config' && /interceptors\.redirect/.test(e.message))
  await assert.rejects(undici.connect({ origin, path: '/', dispatcher: agent }), (e) => e.code === 'invalid_method')
  await assert.rejects(undici.upgrade(origin, { dispatcher: agent }), (e) => e.code === 'invalid_config')
  await assert.rejects(undici.request(origin, { dispatcher: agent, headers: { 'transfer-encoding': 'chunked' } }),
    (e) => e.code === 'invalid_header')
  // A handler that cannot hear errors gets a refusal thrown by dispatch(), as from undici's.
  assert.throws(() => agent.dispatch({ origin, path: 'no-slash', method: 'GET' }, { onConnect() {} }),
    (e) => e instanceof QuiverError && e.code === 'invalid_url')
  let heard = null
  assert.equal(agent.dispatch({ origin, path: '/', method: 'CONNECT' }, { onRequestStart() {}, onResponseError: (_c, e) => { heard = e } }), false)
  assert.equal(heard.code, 'invalid_method')
  // Through the agent's own Dispatcher API methods, which use undici's.
  const res = await agent.request({ origin, path: '/headers', method: 'GET', headers: { connection: 'close', 'x-a': '1' } })
  const seen = await res.body.json()
  assert.deepEqual(seen.headers.filter(([n]) => n === 'connection' || n === 'x-a'), [['x-a', '1']])
  await agent.close()
  assert.equal(agent.closed, true)
  await assert.rejects(undici.request(origin, { dispatcher: agent }), (e) => e.code === 'shutdown')
})

test('headersTimeout and bodyTimeout become quiver read timeouts', async () => {
  const agent = new Agent()
  const origin = `http://127.0.0.1:${info.http}`
  await assert.rejects(undici.request(`${origin}/slow/3000`, { dispatcher: agent, headersTimeout: 200, bodyTimeout: 100 }),
    (e) => e instanceof QuiverError && e.code === 'read_timeout')
  const res = await undici.request(`${origin}/slow/300`, { dispatcher: agent, headersTimeout: 0, bodyTimeout: 0 })
  assert.equal(await res.body.text(), 'slow')
  await assert.rejects(undici.request(origin, { dispatcher: agent, headersTimeout: -1 }), (e) => e.code === 'invalid_config')
  await agent.close()
})

test('close() waits for what is in flight; destroy() aborts it', async () => {
  const origin = `http://127.0.0.1:${info.http}`
  const agent = new Agent()
  const slow = undici.request(`${origin}/slow/500`, { dispatcher: agent }).then((r) => r.body.text())
  await sleep(50)
  let closed = false
  const closing = agent.close().then(() => { closed = true })
  await sleep(100)
  assert.equal(closed, false)
  assert.equal(await slow, 'slow')
  await closing
  assert.equal(closed, true)

  const doomed = new Agent()
  const pending = undici.request(`${origin}/slow/3000`, { dispatcher: doomed }).then(() => null, (e) => e)
  await sleep(50)
  const reason = new Error('going away')
  await doomed.destroy(reason)
  assert.equal(await pending, reason)
  assert.equal(doomed.destroyed, true)
  await new Promise((resolve) => doomed.close(resolve)) // callback form
})

test('the retry interceptor composes, taking quiver\'s error codes', async () => {
  const port = await closedPort()
  const agent = new Agent()
  let attempts = 0
  const counting = (dispatch) => (opts, handler) => {
    attempts++
    return dispatch(opts, handler)
  }
  const retrying = agent.compose(counting, undici.interceptors.retry({
    maxRetries: 2, minTimeout: 10, timeoutFactor: 1, errorCodes: ['connect_refused'],
  }))
  await assert.rejects(undici.request(`http://127.0.0.1:${port}/`, { dispatcher: retrying }),
    (e) => e instanceof QuiverError && e.code === 'connect_refused')
  assert.equal(attempts, 3)
  await agent.close()
})

// Bodies for the backpressure tests: large against what the kernel may buffer on loopback
// (tcp_rmem allows 32 MiB here) plus quiver's windows and read-ahead.
const HUGE = 256 * MiB
const BOUND = 64 * MiB

test('a fetch body left unread stops quiver reading the connection', async (t) => {
  const agent = new Agent()
  undici.setGlobalDispatcher(agent)
  await resetStats()
  const res = await fetch(`http://127.0.0.1:${info.http}/bytes/${HUGE}`)
  const sent = await sentSettles()
  t.diagnostic(`${(sent / MiB).toFixed(1)} MiB sent to a reader that read none`)
  assert.ok(sent < BOUND, `the server sent ${sent} bytes to a reader that read none`)
  const reader = res.body.getReader()
  let offset = 0
  while (offset < 8 * MiB) offset = checkPattern((await reader.read()).value, offset)
  await reader.cancel()
  await agent.close() // nothing left in flight
})

const PROTOCOLS = [0, 2, 4] // HTTP/1.1, HTTP/2 over TLS (ALPN, test CA), HTTP/3
const NAMES = protocols({ http: 0, https: 0, h2c: 0, h3: 0, ca_file: '' }).map((p) => p.name)

for (const index of PROTOCOLS) {
  describe(NAMES[index], () => {
    let proto
    let agent
    before(() => {
      proto = protocols(info)[index]
      agent = new Agent(proto.options)
    })
    after(async () => {
      // destroy, not close: a test that failed may have left a request paused for good.
      await agent.destroy()
    })

    test('global fetch: GET, POST, PUT, DELETE over quiver', async () => {
      undici.setGlobalDispatcher(agent)
      const get = await fetch(proto.url('/headers?x=1'), { headers: { 'x-one': '1' } })
      assert.equal(get.status, 200)
      assert.equal(get.statusText, proto.version === '1.1' ? 'OK' : '')
      const seen = await get.json()
      assert.equal(seen.version, `HTTP/${proto.version}`)
      assert.equal(seen.query, 'x=1')
      assert.deepEqual(seen.headers.filter(([n]) => n === 'x-one'), [['x-one', '1']])
      for (const method of ['POST', 'PUT', 'DELETE']) {
        const res = await fetch(proto.url('/echo'), { method, body: `${method} body`, headers: { 'content-type': 'text/x-test' } })
        assert.equal(res.status, 200)
        assert.equal(res.headers.get('x-echo-method'), method)
        assert.equal(res.headers.get('content-type'), 'text/x-test')
        assert.equal(await res.text(), `${method} body`)
      }
      const head = await fetch(proto.url('/bytes/10'), { method: 'HEAD' })
      assert.equal(head.headers.get('content-length'), '10')
      assert.equal(head.body, null)
      assert.ok(agent.stats().origins.some((o) => o.connectionsOpened > 0))
    })

    test('global fetch: a streamed upload', async () => {
      undici.setGlobalDispatcher(agent)
      const parts = chunks(64, 16384)
      let pulled = 0
      const body = new ReadableStream({
        pull(controller) {
          if (pulled === parts.length) controller.close()
          else controller.enqueue(parts[pulled++])
        },
      })
      const res = await fetch(proto.url('/sink'), { method: 'POST', body, duplex: 'half' })
      assert.equal(res.status, 200)
      assert.deepEqual(await res.json(), { received: 64 * 16384 })
    })

    test('global fetch: a streamed large download', async () => {
      undici.setGlobalDispatcher(agent)
      const size = 16 * MiB + 7
      const res = await fetch(proto.url(`/bytes/${size}?chunked=1&chunk_size=65536`))
      assert.equal(res.status, 200)
      assert.equal(await readPattern(res.body), size)
    })

    test('global fetch: aborting mid-body', async () => {
      undici.setGlobalDispatcher(agent)
      const ac = new AbortController()
      const res = await fetch(proto.url(`/bytes/${64 * MiB}`), { signal: ac.signal })
      const reader = res.body.getReader()
      const first = await reader.read()
      assert.ok(first.value.length > 0)
      ac.abort()
      await assert.rejects(async () => {
        for (;;) if ((await reader.read()).done) break
      }, (e) => e.name === 'AbortError')
      // The agent is not left with anything in flight, and still works.
      const again = await fetch(proto.url('/health'))
      assert.equal(await again.text(), 'ok')
    })

    test('global fetch decodes what quiver passes on undecoded', async () => {
      undici.setGlobalDispatcher(agent)
      const res = await fetch(proto.url('/encoded/gzip/100000'))
      assert.equal(res.headers.get('content-encoding'), 'gzip')
      assert.equal(await readPattern(res.body), 100000)
    })

    test('undici.request and undici.stream through the agent', async () => {
      undici.setGlobalDispatcher(agent)
      const res = await undici.request(proto.url('/sink'), { method: 'PUT', body: Readable.from(chunks(8, 10000)) })
      assert.equal(res.statusCode, 200)
      assert.deepEqual(await res.body.json(), { received: 80000 })

      const viaOption = await undici.request(proto.url('/headers'), { dispatcher: agent, query: { a: 1, b: ['x', 'y'] } })
      assert.equal((await viaOption.body.json()).query, 'a=1&b=x&b=y')

      const form = new undici.FormData()
      form.append('title', 'holiday')
      form.append('file', new Blob([pattern(0, 5000)]), 'f.bin')
      const multipart = await undici.request(proto.url('/multipart'), { method: 'POST', body: form })
      const parsed = await multipart.body.json()
      assert.deepEqual(parsed.parts.map((p) => [p.name, p.filename, p.size]), [['title', null, 7], ['file', 'f.bin', 5000]])

      let offset = 0
      let status = 0
      const { trailers } = await undici.stream(proto.url('/bytes/1000000'), { method: 'GET', opaque: null }, ({ statusCode }) => {
        status = statusCode
        return new Writable({
          write(chunk, _encoding, callback) {
            offset = checkPattern(chunk, offset)
            callback()
          },
        })
      })
      assert.equal(status, 200)
      assert.equal(offset, 1000000)
      assert.deepEqual(trailers, {})

      const fetched = await undici.fetch(proto.url('/echo'), { method: 'POST', body: 'through undici.fetch' })
      assert.equal(await fetched.text(), 'through undici.fetch')
    })

    test('the redirect interceptor composes with the agent', async () => {
      const redirecting = agent.compose(undici.interceptors.redirect({ maxRedirections: 3 }))
      const res = await undici.request(proto.url('/redirect/3'), { dispatcher: redirecting })
      assert.equal(res.statusCode, 200)
      assert.equal((await res.body.json()).path, '/redirect/0')
      // Alone, the agent does not follow: the redirect itself is the response.
      const plain = await undici.request(proto.url('/redirect/3'), { dispatcher: agent })
      assert.equal(plain.statusCode, 302)
      assert.equal(plain.headers.location, '/redirect/2')
      await plain.body.dump()
      // Global fetch follows by itself (quiver does not a second time).
      undici.setGlobalDispatcher(agent)
      const followed = await fetch(proto.url('/redirect/2'))
      assert.equal(followed.redirected, true)
      assert.equal(followed.url, proto.url('/redirect/0'))
      await followed.arrayBuffer()
    })

    test('the decompress interceptor composes with the agent', async () => {
      const decoding = agent.compose(undici.interceptors.decompress())
      for (const coding of ['gzip', 'br', 'deflate']) {
        const res = await undici.request(proto.url(`/encoded/${coding}/200000`), { dispatcher: decoding })
        assert.equal(res.statusCode, 200)
        const body = Buffer.from(await res.body.arrayBuffer())
        assert.equal(body.length, 200000, coding)
        checkPattern(body, 0)
      }
      // Without it, the bytes as sent: quiver decodes nothing under a dispatcher.
      const raw = await undici.request(proto.url('/encoded/gzip/200000'), { dispatcher: agent })
      assert.equal(raw.headers['content-encoding'], 'gzip')
      const bytes = Buffer.from(await raw.body.arrayBuffer())
      assert.equal(bytes.length, Number(raw.headers['content-length']))
      assert.deepEqual([...bytes.subarray(0, 2)], [0x1f, 0x8b])
    })

    test('dispatch with a controller-style handler: head, data, trailers', async () => {
      const url = new URL(proto.url('/trailers'))
      const events = []
      let body = ''
      const done = new Promise((resolve, reject) => {
        const accepted = agent.dispatch({ origin: url.origin, path: url.pathname, method: 'GET', headers: { te: 'trailers' } }, {
          onRequestStart(controller, context) {
            events.push('start')
            assert.equal(typeof controller.abort, 'function')
            assert.equal(typeof context, 'object')
          },
          onResponseStart(controller, statusCode, headers, statusMessage) {
            events.push(`head ${statusCode}`)
            assert.equal(typeof statusMessage, 'string')
            assert.ok(Array.isArray(controller.rawHeaders) && Buffer.isBuffer(controller.rawHeaders[0]))
            assert.match(headers['x-conn-id'], /^\d+$/)
          },
          onResponseData(_controller, chunk) {
            body += chunk.toString()
          },
          onResponseEnd(_controller, trailers) {
            events.push('end')
            resolve(trailers)
          },
          onResponseError(_controller, err) {
            reject(err)
          },
        })
        assert.equal(accepted, true)
      })
      const trailers = await done
      assert.deepEqual(events, ['start', 'head 200', 'end'])
      assert.equal(body, 'hello trailers')
      assert.equal(trailers['x-trailer-one'], '1')
      assert.equal(trailers['x-trailer-two'], '2')
    })

    test('dispatch with a legacy handler: raw Buffers, abort from onConnect', async () => {
      const url = new URL(proto.url('/bytes/100'))
      const seen = await new Promise((resolve, reject) => {
        const got = { body: [] }
        agent.dispatch({ origin: url.origin, path: url.pathname, method: 'GET' }, {
          onConnect(abort) {
            got.abort = typeof abort
          },
          onResponseStarted() {
            got.started = true
          },
          onHeaders(statusCode, rawHeaders, resume, statusText) {
            got.status = statusCode
            got.raw = rawHeaders
            got.statusText = statusText
            return true
          },
          onData(chunk) {
            got.body.push(chunk)
            return true
          },
          onComplete(rawTrailers) {
            got.trailers = rawTrailers
            resolve(got)
          },
          onError: reject,
        })
      })
      assert.equal(seen.abort, 'function')
      assert.equal(seen.started, true)
      assert.equal(seen.status, 200)
      assert.ok(seen.raw.every((b) => Buffer.isBuffer(b)))
      const names = seen.raw.filter((_, i) => i % 2 === 0).map(String)
      assert.ok(names.includes('content-length'))
      assert.deepEqual(Buffer.concat(seen.body), pattern(0, 100))
      assert.deepEqual(seen.trailers, [])

      // Aborting at once (as fetch does for a destroyed connection): nothing is sent, onError
      // gets the reason.
      const reason = new Error('not now')
      const err = await new Promise((resolve) => {
        agent.dispatch({ origin: url.origin, path: url.pathname, method: 'GET' }, {
          onConnect(abort) {
            abort(reason)
          },
          onHeaders() {
            resolve(new Error('onHeaders after abort'))
          },
          onError: resolve,
        })
      })
      assert.equal(err, reason)
    })

    /** Waits until `read()` passes `target` (the handler is reading again). */
    async function reaches(read, target) {
      const until = Date.now() + 60000
      while (read() < target) {
        assert.ok(Date.now() < until, `stuck at ${read()} bytes`)
        await sleep(20)
      }
    }

    test('a paused handler (onData returning false) stops quiver reading; resume() goes on', async (t) => {
      const url = new URL(proto.url(`/bytes/${HUGE}`))
      await resetStats()
      let received = 0
      let resume = null
      let abort = null
      let pausing = true
      let whilePaused = 0
      const done = new Promise((resolve, reject) => {
        agent.dispatch({ origin: url.origin, path: url.pathname, method: 'GET' }, {
          onConnect(a) {
            abort = a
          },
          onHeaders(_status, _raw, r) {
            resume = r
            return true
          },
          onData(chunk) {
            received += chunk.length
            if (!pausing) return true
            whilePaused++
            return false // nothing more until resume()
          },
          onComplete: () => reject(new Error('the body ended')),
          onError: resolve,
        })
      })
      const sent = await sentSettles()
      assert.equal(whilePaused, 1, 'onData was called again while paused')
      t.diagnostic(`${(sent / MiB).toFixed(1)} MiB sent to a paused handler`)
      assert.ok(sent < BOUND, `the server sent ${sent} bytes to a paused handler`)
      pausing = false
      resume()
      await reaches(() => received, sent + 8 * MiB)
      const reason = new Error('seen enough')
      abort(reason)
      assert.equal(await done, reason)
    })

    test('controller.pause() and resume() (undici 7 handlers)', async (t) => {
      const url = new URL(proto.url(`/bytes/${HUGE}`))
      await resetStats()
      let ctl = null
      let offset = 0
      let calls = 0
      const done = new Promise((resolve, reject) => {
        agent.dispatch({ origin: url.origin, path: url.pathname, method: 'GET' }, {
          onRequestStart(controller) {
            ctl = controller
          },
          onResponseStart(controller) {
            controller.pause() // before any data
          },
          onResponseData(_c, chunk) {
            calls++
            offset = checkPattern(chunk, offset)
          },
          onResponseEnd: () => reject(new Error('the body ended')),
          onResponseError: (_c, e) => resolve(e),
        })
      })
      const sent = await sentSettles()
      assert.equal(calls, 0)
      assert.equal(ctl.paused, true)
      t.diagnostic(`${(sent / MiB).toFixed(1)} MiB sent to a paused handler`)
      assert.ok(sent < BOUND, `the server sent ${sent} bytes to a paused handler`)
      ctl.resume()
      await reaches(() => offset, sent + 8 * MiB)
      ctl.abort(new Error('seen enough'))
      assert.equal(ctl.aborted, true)
      assert.equal((await done).message, 'seen enough')
      assert.equal(ctl.reason.message, 'seen enough')
    })

    describe('quiver.fetch', () => {
      let client
      let qfetch
      before(() => {
        client = new Client(proto.options)
        qfetch = quiverFetch.withClient(client)
      })
      after(async () => {
        await client.close()
      })

      test('GET, POST, PUT, DELETE; bodies of every kind', async () => {
        const get = await qfetch(proto.url('/headers'))
        assert.ok(get instanceof Response)
        assert.equal(get.status, 200)
        assert.equal(get.url, proto.url('/headers'))
        assert.equal(get.redirected, false)
        assert.equal(get.type, 'basic')
        assert.equal((await get.json()).version, `HTTP/${proto.version}`)
        for (const method of ['POST', 'PUT', 'DELETE']) {
          const res = await qfetch(new Request(proto.url('/echo'), { method, body: `${method} body` }))
          assert.equal(res.headers.get('x-echo-method'), method)
          assert.equal(res.headers.get('content-type'), 'text/plain;charset=UTF-8')
          assert.equal(await res.text(), `${method} body`)
        }
        const bytes = await qfetch(proto.url('/echo'), { method: 'POST', body: new Uint8Array([1, 2, 3]) })
        assert.deepEqual([...new Uint8Array(await bytes.arrayBuffer())], [1, 2, 3])
        const params = await qfetch(proto.url('/echo'), { method: 'POST', body: new URLSearchParams({ a: '1', b: 'two' }) })
        assert.equal(params.headers.get('content-type'), 'application/x-www-form-urlencoded;charset=UTF-8')
        assert.equal(await params.text(), 'a=1&b=two')
        const blob = await qfetch(proto.url('/echo'), { method: 'PUT', body: new Blob(['blob body'], { type: 'text/x-blob' }) })
        assert.equal(blob.headers.get('content-type'), 'text/x-blob')
        assert.equal(blob.headers.get('content-length'), '9')
        assert.equal(await blob.text(), 'blob body')
        const form = new FormData()
        form.append('title', 'holiday')
        form.append('file', new Blob([pattern(0, 3000)]), 'f.bin')
        const multipart = await qfetch(proto.url('/multipart'), { method: 'POST', body: form })
        const parsed = await multipart.json()
        assert.deepEqual(parsed.parts.map((p) => [p.name, p.filename, p.size]), [['title', null, 7], ['file', 'f.bin', 3000]])
        assert.equal(parsed.chunked, false)
        const noContent = await qfetch(proto.url('/status/204'))
        assert.equal(noContent.status, 204)
        assert.equal(noContent.body, null)
        const head = await qfetch(proto.url('/bytes/10'), { method: 'HEAD' })
        assert.equal(head.body, null)
        assert.equal(head.headers.get('content-length'), '10')
        await assert.rejects(qfetch(proto.url('/'), { method: 'GET', body: 'x' }), TypeError)
      })

      test('a streamed upload and a streamed large download', async () => {
        const parts = chunks(32, 32768)
        const body = Readable.toWeb(Readable.from(parts))
        const res = await qfetch(proto.url('/sink'), { method: 'POST', body, duplex: 'half' })
        assert.deepEqual(await res.json(), { received: 32 * 32768 })
        const size = 16 * MiB + 3
        const big = await qfetch(proto.url(`/bytes/${size}?chunked=1&chunk_size=65536`))
        assert.equal(await readPattern(big.body), size)
      })

      test('redirect modes: follow, manual, error', async () => {
        const followed = await qfetch(proto.url('/redirect/2'))
        assert.equal(followed.status, 200)
        assert.equal(followed.redirected, true)
        assert.equal(followed.url, proto.url('/redirect/0'))
        assert.equal(followed.clone().url, proto.url('/redirect/0'))
        assert.equal((await followed.json()).path, '/redirect/0')
        const manual = await qfetch(proto.url('/redirect/2'), { redirect: 'manual' })
        assert.equal(manual.status, 302)
        assert.equal(manual.redirected, false)
        assert.equal(manual.headers.get('location'), '/redirect/1')
        assert.equal(await manual.text(), 'redirect')
        await assert.rejects(qfetch(proto.url('/redirect/2'), { redirect: 'error' }),
          (e) => e instanceof TypeError && e.cause instanceof QuiverError && e.cause.code === 'redirect_refused')
      })

      test('decodes, as fetch does; content-encoding stays', async () => {
        const res = await qfetch(proto.url('/encoded/br/100000'))
        assert.equal(res.headers.get('content-encoding'), 'br')
        assert.equal(await readPattern(res.body), 100000)
      })

      test('abort: before the head, and mid-body', async () => {
        const early = new AbortController()
        const pending = qfetch(proto.url('/slow/3000'), { signal: early.signal })
        await sleep(50)
        early.abort()
        await assert.rejects(pending, (e) => e.name === 'AbortError')
        const reason = new Error('enough')
        await assert.rejects(qfetch(proto.url('/health'), { signal: AbortSignal.abort(reason) }), (e) => e === reason)

        const ac = new AbortController()
        const res = await qfetch(proto.url(`/bytes/${64 * MiB}`), { signal: ac.signal })
        const reader = res.body.getReader()
        assert.ok((await reader.read()).value.length > 0)
        ac.abort(reason)
        await assert.rejects(async () => {
          for (;;) if ((await reader.read()).done) break
        }, (e) => e === reason)
        assert.equal(await (await qfetch(proto.url('/health'))).text(), 'ok')
      })
    })
  })
}

test('quiver.fetch on its default client', async () => {
  const res = await quiverFetch(new URL(`http://127.0.0.1:${info.http}/redirect/3`))
  assert.equal(res.redirected, true)
  assert.equal((await res.json()).path, '/redirect/0')
})

test('a quiver.fetch body left unread stops quiver reading the connection', async (t) => {
  const client = new Client()
  await resetStats()
  const res = await quiverFetch.withClient(client)(`http://127.0.0.1:${info.http}/bytes/${HUGE}`)
  const sent = await sentSettles()
  t.diagnostic(`${(sent / MiB).toFixed(1)} MiB sent to a reader that read none`)
  assert.ok(sent < BOUND, `the server sent ${sent} bytes to a reader that read none`)
  const reader = res.body.getReader()
  let offset = 0
  while (offset < 8 * MiB) offset = checkPattern((await reader.read()).value, offset)
  await reader.cancel()
  await client.close()
})
