'use strict'
// Errors by class and code; aborts and timeouts.

const assert = require('node:assert/strict')
const { before, after, describe, test } = require('node:test')

const { Client, QuiverError, errorKinds } = require('quiver-http')
const { startServer, protocols, sleep, closedPort } = require('./helpers.js')

let info
before(async () => {
  info = await startServer()
})
after(async () => {
  await info.stop()
})

/** Asserts that `promise` rejects with a QuiverError of `code` and `cls`. */
async function rejectsWith(promise, code, cls) {
  let err
  try {
    await promise
  } catch (e) {
    err = e
  }
  assert.ok(err instanceof QuiverError, `expected a QuiverError, got ${err}`)
  assert.ok(err instanceof Error)
  assert.equal(err.name, 'QuiverError')
  assert.equal(err.code, code, err.message)
  assert.equal(err.class, cls, err.message)
  assert.ok(!err.message.startsWith('[quiver:'), err.message)
  return err
}

function throwsWith(fn, code, cls) {
  assert.throws(fn, (e) => e instanceof QuiverError && e.code === code && e.class === cls)
}

describe('error classes and codes', () => {
  test('every kind has a class', () => {
    const classes = new Map(errorKinds)
    assert.equal(classes.get('connect_refused'), 'transient')
    assert.equal(classes.get('invalid_url'), 'invalid')
    assert.equal(classes.get('tls'), 'unrecoverable')
    for (const [, cls] of errorKinds) assert.ok(['transient', 'invalid', 'unrecoverable'].includes(cls))
  })

  test('connection refused: connect_refused, transient', async () => {
    const client = new Client()
    await rejectsWith(client.request(`http://127.0.0.1:${await closedPort()}/`), 'connect_refused', 'transient')
    await client.close()
  })

  test('bad URLs: invalid_url / invalid_scheme, invalid', async () => {
    const client = new Client()
    await rejectsWith(client.request('not a url'), 'invalid_url', 'invalid')
    await rejectsWith(client.request('http://'), 'invalid_url', 'invalid')
    await rejectsWith(client.request('ftp://example.com/'), 'invalid_scheme', 'invalid')
    await rejectsWith(client.request(42), 'invalid_url', 'invalid')
    await client.close()
  })

  test('bad headers, methods and bodies: invalid', async () => {
    const client = new Client()
    const url = `http://127.0.0.1:${info.http}/health`
    await rejectsWith(client.request(url, { headers: { 'x-bad': 'a\r\nb: c' } }), 'invalid_header', 'invalid')
    await rejectsWith(client.request(url, { headers: { 'bad name': 'v' } }), 'invalid_header', 'invalid')
    await rejectsWith(client.request(url, { method: 'GE T' }), 'invalid_method', 'invalid')
    await rejectsWith(client.request(url, { method: 'POST', body: 'hello', headers: { 'content-length': '3' } }), 'invalid_body', 'invalid')
    await rejectsWith(client.request(url, { method: 'POST', body: 42 }), 'invalid_body', 'invalid')
    await client.close()
  })

  test('wrong CA: tls, unrecoverable (TLS over TCP and QUIC)', async () => {
    const tcp = new Client({ caFile: info.wrong_ca_file })
    await rejectsWith(tcp.request(`https://localhost:${info.https}/health`), 'tls', 'unrecoverable')
    await tcp.close()
    const quic = new Client({ caFile: info.wrong_ca_file, protocol: 'http3' })
    await rejectsWith(quic.request(`https://localhost:${info.h3}/health`), 'tls', 'unrecoverable')
    await quic.close()
  })

  test('mutual TLS with a client certificate', async () => {
    const client = new Client({ caFile: info.ca_file, clientCert: info.client_cert, clientKey: info.client_key })
    const res = await client.request(`https://localhost:${info.mtls}/health`)
    assert.equal(await res.body.text(), 'ok')
    await client.close()
  })

  test('a body that ends early: connection_closed, transient', async () => {
    const client = new Client()
    const res = await client.request(`http://127.0.0.1:${info.http}/close-mid-body/100000`)
    const err = await rejectsWith(res.body.text(), 'connection_closed', 'transient')
    assert.ok(err.message.length > 0)
    await client.close()
  })

  test('a malformed response: protocol, unrecoverable', async () => {
    const client = new Client()
    await rejectsWith(client.request(`http://127.0.0.1:${info.raw}/garbage`), 'protocol', 'unrecoverable')
    await client.close()
  })

  test('a failing upload source: body_stream, with the cause', async () => {
    const client = new Client()
    const boom = new Error('source broke')
    async function* failing() {
      yield 'first part'
      throw boom
    }
    const err = await rejectsWith(
      client.request(`http://127.0.0.1:${info.http}/sink`, { method: 'POST', body: failing() }),
      'body_stream',
      'transient',
    )
    assert.equal(err.cause, boom)
    assert.match(err.message, /source broke/)
    await client.close()
  })
})

describe('options are validated at construction', () => {
  test('bad values and names throw invalid_config', () => {
    throwsWith(() => new Client({ size: 0 }), 'invalid_config', 'invalid')
    throwsWith(() => new Client({ checkoutTimeout: -5 }), 'invalid_config', 'invalid')
    throwsWith(() => new Client({ protocol: 'gopher' }), 'invalid_config', 'invalid')
    throwsWith(() => new Client({ noSuchOption: 1 }), 'invalid_config', 'invalid')
    throwsWith(() => new Client({ size: {} }), 'invalid_config', 'invalid')
    throwsWith(() => new Client({ clientCert: '/x' }), 'invalid_config', 'invalid')
    throwsWith(() => new Client({ pools: { 'https://*.example.com': { size: 0 } } }), 'invalid_config', 'invalid')
    throwsWith(() => new Client({ pools: { 'http://plain.example.com': { protocol: 'http3' } } }), 'invalid_config', 'invalid')
    throwsWith(() => new Client({ pools: { 'not a pattern': { size: 2 } } }), 'invalid_config', 'invalid')
    assert.throws(() => new Client({ size: 0 }), /size/)
  })

  test('extreme values are invalid errors, never crashes', async () => {
    for (const options of [
      { requestTimeout: 1e30 }, { requestTimeout: -1 }, { requestTimeout: NaN },
      { connectTimeout: 1e300 }, { readTimeout: Infinity }, { size: 2 ** 70 }, { size: -1 },
      { maxResponseHeaders: 2 ** 40 }, { windowUpdateThreshold: Infinity }, { streamWindow: -5 },
    ]) {
      throwsWith(() => new Client(options), 'invalid_config', 'invalid')
    }
    const client = new Client()
    for (const timeout of [1e30, -1, NaN]) {
      await rejectsWith(client.request(`http://127.0.0.1:${info.http}/health`, { timeout }), 'invalid_config', 'invalid')
    }
    await client.close()
  })

  test('every core option is accepted in camelCase (and snake_case)', () => {
    const client = new Client({
      protocol: 'auto',
      size: 3,
      maxConnections: 2,
      initialMaxStreams: 50,
      streamWindow: 1 << 20,
      connectionWindow: 4 << 20,
      windowUpdateThreshold: 0.25,
      pingInterval: 0,
      pingTimeout: 2500.5,
      quicIdleTimeout: 10000,
      earlyData: false,
      checkoutTimeout: 1000,
      idleTimeout: 60000,
      connect_timeout: 2000,
      readTimeout: 3000,
      requestTimeout: null,
      caFile: info.ca_file,
      tlsRoots: 'webpki',
      dangerAcceptInvalidCerts: false,
      maxResponseHeaders: 65536,
      maxResponseBody: 0,
      pools: {
        'https://api.example.com': { size: 7, checkoutTimeout: 250 },
        'https://*.example.com': { protocol: 'http3', earlyData: true },
      },
    })
    assert.equal(client.closed, false)
  })

  test('dangerAcceptInvalidCerts skips verification; earlyData reaches HTTP/3', async () => {
    const lax = new Client({ dangerAcceptInvalidCerts: true })
    const res = await lax.request(`https://localhost:${info.https}/health`)
    assert.equal(await res.body.text(), 'ok')
    await lax.close()
    const h3 = new Client({ caFile: info.ca_file, protocol: 'http3', earlyData: true })
    const early = await h3.request(`https://localhost:${info.h3}/early`, { earlyData: true })
    // A first connection has no session ticket to resume: nothing can go early yet.
    assert.deepEqual(await early.body.json(), { early: false })
    await h3.close()
  })

  test('per-origin rules apply', async () => {
    // The h2c port, reached over HTTP/1.1 by default, speaks HTTP/2 only through its rule.
    const client = new Client({ pools: { [`http://127.0.0.1:${info.h2c}`]: { protocol: 'http2' } } })
    const res = await client.request(`http://127.0.0.1:${info.h2c}/health`)
    assert.equal(res.httpVersion, '2.0')
    await res.body.dump()
    const other = await client.request(`http://127.0.0.1:${info.http}/health`)
    assert.equal(other.httpVersion, '1.1')
    await other.body.dump()
    await client.close()
  })
})

describe('abort', () => {
  for (const index of [0, 2, 4]) {
    test(`an AbortSignal rejects a request in flight promptly (${['HTTP/1.1', '', 'HTTP/2', '', 'HTTP/3'][index]})`, async () => {
      const proto = protocols(info)[index]
      const client = new Client(proto.options)
      const ac = new AbortController()
      const started = Date.now()
      setTimeout(() => ac.abort(), 100)
      const err = await rejectsWith(client.request(proto.url('/slow/5000'), { signal: ac.signal }), 'cancelled', 'transient')
      const took = Date.now() - started
      assert.ok(took < 1000, `took ${took} ms`)
      assert.equal(err.cause?.name, 'AbortError')
      // The client goes on working.
      const res = await client.request(proto.url('/health'))
      assert.equal(await res.body.text(), 'ok')
      await client.close()
    })
  }

  test('aborting while the body streams rejects the read', async () => {
    const client = new Client()
    const ac = new AbortController()
    const res = await client.request(`http://127.0.0.1:${info.http}/bytes/1000000?delay_ms=20&chunk_size=1000`, { signal: ac.signal })
    let seen = 0
    const err = await rejectsWith((async () => {
      for await (const chunk of res.body) {
        seen += chunk.length
        if (seen >= 3000) ac.abort(new Error('enough'))
      }
    })(), 'cancelled', 'transient')
    assert.equal(err.cause?.message, 'enough')
    await client.close()
  })

  test('an already aborted signal rejects at once', async () => {
    const client = new Client()
    await rejectsWith(client.request(`http://127.0.0.1:${info.http}/health`, { signal: AbortSignal.abort() }), 'cancelled', 'transient')
    await client.close()
  })

  test('AbortSignal.timeout', async () => {
    const client = new Client()
    const started = Date.now()
    await rejectsWith(client.request(`http://127.0.0.1:${info.http}/slow/5000`, { signal: AbortSignal.timeout(150) }), 'cancelled', 'transient')
    assert.ok(Date.now() - started < 1000)
    await client.close()
  })
})

describe('timeouts', () => {
  for (const index of [0, 3, 4]) {
    test(`the timeout option: request_timeout, transient (${['HTTP/1.1', '', '', 'HTTP/2', 'HTTP/3'][index]})`, async () => {
      const proto = protocols(info)[index]
      const client = new Client(proto.options)
      const started = Date.now()
      await rejectsWith(client.request(proto.url('/slow/5000'), { timeout: 200 }), 'request_timeout', 'transient')
      assert.ok(Date.now() - started < 2000)
      await client.close()
    })
  }

  test('requestTimeout also covers the body', async () => {
    const client = new Client({ requestTimeout: 300 })
    const res = await client.request(`http://127.0.0.1:${info.http}/bytes/100000?delay_ms=50&chunk_size=1000`)
    await rejectsWith(res.body.text(), 'request_timeout', 'transient')
    await client.close()
  })

  test('checkoutTimeout: checkout_timeout, transient', async () => {
    const client = new Client({ size: 1, checkoutTimeout: 200 })
    const first = client.request(`http://127.0.0.1:${info.http}/slow/1000`)
    await sleep(20)
    await rejectsWith(client.request(`http://127.0.0.1:${info.http}/health`), 'checkout_timeout', 'transient')
    await (await first).body.dump()
    await client.close()
  })

  test('readTimeout: read_timeout, transient', async () => {
    const client = new Client({ readTimeout: 200 })
    await rejectsWith(client.request(`http://127.0.0.1:${info.http}/slow/2000`), 'read_timeout', 'transient')
    await client.close()
  })
})

describe('closed clients and channels', () => {
  test('a closed client rejects new requests with shutdown', async () => {
    const client = new Client()
    const res = await client.request(`http://127.0.0.1:${info.http}/health`)
    await client.close()
    assert.equal(client.closed, true)
    // A body in flight survives the close.
    assert.equal(await res.body.text(), 'ok')
    await rejectsWith(client.request(`http://127.0.0.1:${info.http}/health`), 'shutdown', 'transient')
    assert.throws(() => client.stats(), (e) => e.code === 'shutdown')
  })

  test('close() ends requests in flight with shutdown, resolving once they settled', async () => {
    const client = new Client()
    let settled = false
    const pending = client.request(`http://127.0.0.1:${info.http}/slow/3000`)
      .finally(() => { settled = true })
    await new Promise((resolve) => setTimeout(resolve, 100))
    const started = Date.now()
    await client.close()
    assert.ok(settled, 'close() resolves after the request in flight settled')
    assert.ok(Date.now() - started < 2000, 'close() does not wait for the slow response')
    await rejectsWith(pending, 'shutdown', 'transient')
  })

  test('datagram channels need an HTTP/3 pool', async () => {
    const client = new Client()
    await rejectsWith(client.openDatagramChannel(`http://127.0.0.1:${info.http}/datagram-echo`), 'pool_unsupported_for_transport', 'invalid')
    await client.close()
  })
})
