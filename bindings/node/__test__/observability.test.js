'use strict'
// Observability against the loopback test server: core's events on diagnostics_channel under
// undici's names and quiver's own (a fresh and a reused connection, TLS and HTTP/2 streams,
// HTTP/3, a retried request, redirects, failures, GOAWAY, closed connections), quiver.Agent's
// connection events, timings, progress, nothing built while nobody listens, and the real
// @opentelemetry/instrumentation-undici recording one span per quiver request.

const assert = require('node:assert/strict')
const dc = require('node:diagnostics_channel')
const { after, before, describe, test } = require('node:test')

const undici = require('undici')
const { Agent, Client, Progress, QuiverError, fetch: quiverFetch, native } = require('quiver-http')
const { startServer, checkPattern, sleep, closedPort } = require('./helpers.js')

const UNDICI_CHANNELS = [
  'undici:request:create', 'undici:request:bodySent', 'undici:request:headers', 'undici:request:trailers',
  'undici:request:error', 'undici:client:sendHeaders', 'undici:client:beforeConnect', 'undici:client:connected',
  'undici:client:connectError',
]
const QUIVER_CHANNELS = [
  'quiver:event', 'quiver:request:retried', 'quiver:request:redirected', 'quiver:request:timings',
  'quiver:connection:opened', 'quiver:connection:tls', 'quiver:connection:goaway', 'quiver:connection:closed',
]
const ALL = [...UNDICI_CHANNELS, ...QUIVER_CHANNELS]

/** Subscribes to `names`; `stop()` unsubscribes. Every message is kept with its channel. */
function listen(names = ALL) {
  const seen = []
  const unsubscribe = names.map((name) => {
    const fn = (message) => seen.push({ name, message })
    dc.subscribe(name, fn)
    return () => dc.unsubscribe(name, fn)
  })
  return {
    seen,
    /** The messages of one channel. */
    of: (name) => seen.filter((s) => s.name === name).map((s) => s.message),
    /** The `quiver:event` events. */
    events: () => seen.filter((s) => s.name === 'quiver:event').map((s) => s.message),
    /** The channels that carried `request` (a DiagnosticsRequest), in order. */
    channelsOf: (request) => seen.filter((s) => s.message?.request === request).map((s) => s.name),
    clear: () => seen.splice(0),
    stop: () => unsubscribe.forEach((f) => f()),
  }
}

/** Waits until `check()` is true (on a loaded machine: generously). */
async function until(check, what, ms = 10000) {
  const deadline = Date.now() + ms
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`)
    await sleep(10)
  }
}

/** The names of the events of request `id`, in order. */
function namesOf(events, id) {
  return events.filter((e) => e.request === id).map((e) => e.name)
}

function assertTimingsOrdered(t) {
  assert.ok(t.queued >= 0 && t.ttfb >= t.queued, JSON.stringify(t))
  assert.ok(t.ttfb >= t.redirects, JSON.stringify(t))
  assert.ok(t.ttfb < 60000, JSON.stringify(t))
  if (t.total !== null) assert.ok(t.total >= t.ttfb, JSON.stringify(t))
}

let info
before(async () => {
  info = await startServer()
})
after(async () => {
  await info.stop()
})

describe('events on diagnostics_channel', () => {
  test('a fresh then a reused HTTP/1.1 connection: undici channels, quiver:event, timings', async () => {
    const rec = listen()
    const client = new Client()
    try {
      const url = `http://127.0.0.1:${info.http}/echo`
      const before = Number(process.hrtime.bigint()) / 1e6
      const res = await client.request(url, { method: 'POST', body: 'hello', headers: { 'x-mine': '1' } })
      assert.equal(await res.body.text(), 'hello')
      const afterwards = Number(process.hrtime.bigint()) / 1e6

      // undici's channels, in undici's order, with undici's shapes.
      const [{ request }] = rec.of('undici:request:create')
      assert.equal(request.origin, `http://127.0.0.1:${info.http}`)
      assert.equal(request.path, '/echo')
      assert.equal(request.method, 'POST')
      assert.deepEqual(request.headers.slice(0, 2), ['x-mine', '1'])
      assert.equal(request.completed, true)
      assert.deepEqual(rec.channelsOf(request), [
        'undici:request:create', 'undici:client:sendHeaders', 'undici:request:bodySent', 'undici:request:headers',
        'undici:request:trailers', 'quiver:request:timings',
      ])
      const [sendHeaders] = rec.of('undici:client:sendHeaders')
      assert.match(sendHeaders.headers, /^POST \/echo HTTP\/1\.1\r\nhost: 127\.0\.0\.1:\d+\r\n/)
      assert.match(sendHeaders.headers, /\r\nx-mine: 1\r\n/)
      assert.equal(sendHeaders.socket.remoteAddress, '127.0.0.1')
      assert.equal(sendHeaders.socket.remotePort, info.http)
      assert.equal(sendHeaders.socket.alpnProtocol, 'http/1.1')
      const [{ response }] = rec.of('undici:request:headers')
      assert.equal(response.statusCode, 200)
      assert.equal(response.statusText, 'OK')
      assert.ok(response.headers.every((h) => Buffer.isBuffer(h)))
      assert.ok(response.headers.some((h) => h.toString() === 'x-echo-method'))
      assert.deepEqual(rec.of('undici:request:trailers')[0].trailers, [])
      const [before1] = rec.of('undici:client:beforeConnect')
      assert.deepEqual(before1.connectParams, {
        host: `127.0.0.1:${info.http}`, hostname: '127.0.0.1', protocol: 'http:', port: String(info.http),
        version: undefined, servername: null, localAddress: null,
      })
      const [connected] = rec.of('undici:client:connected')
      assert.equal(connected.connectParams.hostname, '127.0.0.1')
      assert.equal(connected.socket.remotePort, info.http)
      assert.equal(rec.of('undici:client:connectError').length, 0)

      // Every core event on quiver:event: this request's, and its new connection's.
      const events = rec.events()
      const id = events.find((e) => e.name === 'request_start').request
      assert.deepEqual(namesOf(events, id), [
        'request_start', 'queued', 'connection_acquired', 'headers_sent', 'body_sent', 'response_headers', 'response_end',
      ])
      const start = events.find((e) => e.name === 'request_start')
      assert.equal(start.method, 'POST')
      assert.equal(start.url, url)
      assert.equal(events.find((e) => e.name === 'body_sent').bytes, 5)
      assert.equal(events.find((e) => e.name === 'response_headers').status, 200)
      assert.equal(events.find((e) => e.name === 'response_end').bytes, 5)
      assert.equal(events.find((e) => e.name === 'connection_acquired').reused, false)
      const opened = events.find((e) => e.name === 'connection_opened')
      const conn = opened.connection
      assert.deepEqual(events.filter((e) => e.request === null && e.connection === conn).map((e) => e.name),
        ['dns_resolved', 'connected', 'connection_opened'])
      assert.deepEqual(events.find((e) => e.name === 'connected').remote, { address: '127.0.0.1', port: info.http, family: 'IPv4' })
      assert.ok(events.find((e) => e.name === 'dns_resolved').addresses >= 1)
      for (const e of events.filter((e) => e.request === id).slice(2)) assert.equal(e.connection, conn, e.name)
      // Times on process.hrtime's clock, in order for one request.
      const mine = events.filter((e) => e.request === id)
      for (let i = 1; i < mine.length; i++) assert.ok(mine[i].time >= mine[i - 1].time, `${mine[i].name} before ${mine[i - 1].name}`)
      assert.ok(mine[0].time >= before - 1 && mine.at(-1).time <= afterwards + 1, `${before} ${mine[0].time} ${afterwards}`)
      assert.equal(opened.origin, `http://127.0.0.1:${info.http}`)
      assert.equal(rec.of('quiver:connection:opened')[0].connection, conn)
      assert.deepEqual(rec.of('quiver:connection:opened')[0].remote, { address: '127.0.0.1', port: info.http, family: 'IPv4' })

      // Timings: a fresh connection has dns and connect, no tls.
      const t = res.timings
      assert.equal(t.reused, false)
      assert.equal(t.protocol, 'http1')
      assert.equal(t.connectionId, conn)
      assert.ok(t.dns !== null && t.connect !== null && t.tls === null, JSON.stringify(t))
      assert.ok(t.total !== null)
      assertTimingsOrdered(t)
      assert.deepEqual(t.remote, { address: '127.0.0.1', port: info.http, family: 'IPv4' })
      const published = rec.of('quiver:request:timings')[0]
      assert.equal(published.request, request)
      assert.equal(published.id, id)
      assert.equal(published.timings.total, t.total)

      // The same connection again: reused, no dial, no connection events.
      rec.clear()
      const slow = await client.request(`http://127.0.0.1:${info.http}/bytes/200000?chunk_size=16384&delay_ms=30`)
      // The body is still coming: no total yet.
      assert.equal(slow.timings.total, null)
      let offset = 0
      for await (const chunk of slow.body) offset = checkPattern(chunk, offset)
      assert.equal(offset, 200000)
      const t2 = slow.timings
      assert.ok(t2.reused && t2.dns === null && t2.connect === null && t2.tls === null, JSON.stringify(t2))
      assert.equal(t2.connectionId, conn)
      assert.ok(t2.total !== null && t2.total >= t2.ttfb, JSON.stringify(t2))
      assertTimingsOrdered(t2)
      const again = rec.events()
      const id2 = again.find((e) => e.name === 'request_start').request
      assert.notEqual(id2, id)
      assert.deepEqual(namesOf(again, id2), [
        'request_start', 'connection_acquired', 'headers_sent', 'body_sent', 'response_headers', 'response_end',
      ])
      assert.equal(again.find((e) => e.name === 'connection_acquired').reused, true)
      assert.equal(again.filter((e) => e.request === null).length, 0)
      assert.equal(rec.of('undici:client:beforeConnect').length, 0)
      assert.equal(rec.of('quiver:request:timings')[0].timings.total, t2.total)

      // Closing the client closes the connection: connection_closed, quiver:connection:closed.
      await client.close()
      await until(() => rec.of('quiver:connection:closed').some((m) => m.connection === conn), 'connection_closed')
      const closed = rec.of('quiver:connection:closed').find((m) => m.connection === conn)
      assert.equal(typeof closed.reason, 'string')
      assert.equal(closed.origin, `http://127.0.0.1:${info.http}`)
      const closedEvent = rec.events().find((e) => e.name === 'connection_closed' && e.connection === conn)
      assert.equal(closedEvent.reason, closed.reason)
      assert.equal(closedEvent.request, null)
    } finally {
      rec.stop()
      await client.close()
    }
  })

  test('TLS and HTTP/2 streams: tls_done, alpn, stream ids', async () => {
    const rec = listen()
    const client = new Client({ caFile: info.ca_file })
    try {
      const url = `https://localhost:${info.https}/bytes/10`
      const res = await client.request(url)
      await res.body.dump()
      const t = res.timings
      assert.equal(t.protocol, 'http2')
      assert.equal(t.alpn, 'h2')
      assert.equal(t.stream, 1)
      assert.equal(t.resumed, false)
      assert.ok(t.tls !== null && t.connect !== null && t.dns !== null, JSON.stringify(t))
      assertTimingsOrdered(t)
      const events = rec.events()
      const tls = events.find((e) => e.name === 'tls_done')
      assert.equal(tls.alpn, 'h2')
      assert.equal(tls.resumed, false)
      const [tlsMessage] = rec.of('quiver:connection:tls')
      assert.equal(tlsMessage.alpn, 'h2')
      assert.equal(tlsMessage.connection, t.connectionId)
      const headers = events.find((e) => e.name === 'response_headers')
      assert.equal(headers.stream, 1)
      assert.equal(headers.protocol, 'http2')
      const [opened] = rec.of('quiver:connection:opened')
      assert.equal(opened.alpn, 'h2')
      assert.equal(opened.protocol, 'http2')
      const [before1] = rec.of('undici:client:beforeConnect')
      assert.equal(before1.connectParams.servername, 'localhost')
      assert.equal(before1.connectParams.protocol, 'https:')
      const [sendHeaders] = rec.of('undici:client:sendHeaders')
      assert.match(sendHeaders.headers, /^:method: GET\r\n:scheme: https\r\n:authority: localhost:\d+\r\n:path: \/bytes\/10\r\n/)
      assert.equal(sendHeaders.socket.alpnProtocol, 'h2')
      assert.equal(sendHeaders.socket.encrypted, true)
      assert.equal(rec.of('undici:request:headers')[0].response.statusText, '')

      // The next stream on the same connection.
      const second = await client.request(url)
      await second.body.dump()
      assert.equal(second.timings.stream, 3)
      assert.equal(second.timings.reused, true)
      assert.equal(second.timings.tls, null)
      assert.equal(second.timings.connectionId, t.connectionId)
    } finally {
      rec.stop()
      await client.close()
    }
  })

  test('HTTP/3: a QUIC connection and its streams', async () => {
    const rec = listen()
    const client = new Client({ caFile: info.ca_file, protocol: 'http3' })
    try {
      const res = await client.request(`https://localhost:${info.h3}/bytes/1000`)
      assert.equal((await res.body.arrayBuffer()).byteLength, 1000)
      const t = res.timings
      assert.equal(t.protocol, 'http3')
      assert.equal(t.alpn, 'h3')
      assert.ok(t.connect !== null && t.stream !== null, JSON.stringify(t))
      assertTimingsOrdered(t)
      const events = rec.events()
      const id = events.find((e) => e.name === 'request_start').request
      const names = events.map((e) => e.name)
      for (const want of ['request_start', 'connected', 'connection_opened', 'connection_acquired', 'headers_sent', 'body_sent', 'response_headers', 'response_end']) {
        assert.ok(names.includes(want), `${want} missing from ${names}`)
      }
      assert.equal(events.find((e) => e.name === 'response_headers' && e.request === id).protocol, 'http3')
      assert.equal(rec.of('quiver:connection:opened')[0].protocol, 'http3')
      const [sendHeaders] = rec.of('undici:client:sendHeaders')
      assert.equal(sendHeaders.socket.alpnProtocol, 'h3')
      assert.match(sendHeaders.headers, /^:method: GET\r\n/)
    } finally {
      rec.stop()
      await client.close()
    }
  })

  test('a refused stream is retried: quiver:request:retried says why', async () => {
    const refusing = await startServer(['--h2-refuse-every', '5'])
    const rec = listen(['quiver:event', 'quiver:request:retried', 'undici:request:create'])
    const client = new Client({ protocol: 'http2' })
    try {
      for (let i = 0; i < 10; i++) {
        const res = await client.request(`http://127.0.0.1:${refusing.h2c}/health?i=${i}`)
        assert.equal(await res.body.text(), 'ok')
      }
      const retried = rec.of('quiver:request:retried')
      assert.ok(retried.length > 0, rec.events().map((e) => e.name).join(' '))
      const requests = rec.of('undici:request:create').map((m) => m.request)
      for (const m of retried) {
        assert.equal(m.reason, 'refused_stream')
        assert.ok(requests.includes(m.request), 'the retried message carries the request')
        assert.match(m.request.path, /^\/health\?i=\d$/)
        assert.equal(typeof m.id, 'number')
      }
      assert.equal(rec.events().filter((e) => e.name === 'retried').length, retried.length)
      assert.equal(client.stats().retries, retried.length)
    } finally {
      rec.stop()
      await client.close()
      await refusing.stop()
    }
  })

  test('redirects: quiver:request:redirected per hop, one request throughout', async () => {
    const rec = listen()
    const client = new Client()
    try {
      const res = await client.request(`http://127.0.0.1:${info.http}/redirect/2`)
      assert.equal(res.statusCode, 200)
      await res.body.dump()
      const redirected = rec.of('quiver:request:redirected')
      assert.deepEqual(redirected.map((m) => m.statusCode), [302, 302])
      assert.ok(redirected[0].location.endsWith('/redirect/1'), redirected[0].location)
      assert.ok(redirected[1].location.endsWith('/redirect/0'), redirected[1].location)
      const [{ request }] = rec.of('undici:request:create')
      assert.ok(redirected.every((m) => m.request === request))
      assert.equal(rec.of('undici:request:create').length, 1)
      assert.equal(rec.of('undici:request:headers').length, 1)
      assert.equal(rec.of('undici:request:headers')[0].response.statusCode, 200)
      assert.equal(rec.of('undici:request:trailers').length, 1)
      const ids = new Set(rec.events().filter((e) => e.request !== null).map((e) => e.request))
      assert.equal(ids.size, 1)
      const events = rec.events().filter((e) => e.name === 'redirected')
      assert.deepEqual(events.map((e) => [e.status, e.location]), redirected.map((m) => [m.statusCode, m.location]))
      assert.ok(redirected.every((m) => m.id === events[0].request))
      const t = res.timings
      assert.ok(t.redirects > 0 && t.ttfb >= t.redirects, JSON.stringify(t))
      assertTimingsOrdered(t)
    } finally {
      rec.stop()
      await client.close()
    }
  })

  test('failures: a refused connection, a body cut short', async () => {
    const rec = listen()
    const client = new Client()
    try {
      const port = await closedPort()
      await assert.rejects(client.request(`http://127.0.0.1:${port}/`), (e) => e instanceof QuiverError && e.code === 'connect_refused')
      const [failed] = rec.of('undici:request:error')
      assert.ok(failed.error instanceof QuiverError)
      assert.equal(failed.error.code, 'connect_refused')
      assert.equal(failed.request.aborted, true)
      assert.equal(failed.request.completed, false)
      assert.deepEqual(rec.channelsOf(failed.request), ['undici:request:create', 'undici:request:error'])
      const [connectError] = rec.of('undici:client:connectError')
      assert.equal(connectError.error.code, 'connect_refused')
      assert.equal(connectError.connectParams.port, String(port))
      assert.equal(rec.of('undici:client:beforeConnect').length, 1)
      const events = rec.events()
      assert.equal(events.find((e) => e.name === 'connection_failed').error.code, 'connect_refused')
      const requestFailed = events.find((e) => e.name === 'request_failed')
      assert.equal(requestFailed.error.code, 'connect_refused')
      assert.equal(requestFailed.error.class, 'transient')

      // The head arrived, then the connection broke mid-body.
      rec.clear()
      const res = await client.request(`http://127.0.0.1:${info.http}/close-mid-body/100000`)
      await assert.rejects(res.body.text(), QuiverError)
      const [{ request }] = rec.of('undici:request:create')
      assert.deepEqual(rec.channelsOf(request).filter((n) => n.startsWith('undici:request:')),
        ['undici:request:create', 'undici:request:bodySent', 'undici:request:headers', 'undici:request:error'])
      const last = rec.events().filter((e) => e.request !== null).at(-1)
      assert.equal(last.name, 'request_failed')
      assert.equal(rec.of('quiver:request:timings').length, 0)

      // A body the caller cancels ends the request too (undici:request:error, `cancelled`).
      rec.clear()
      const big = await client.request(`http://127.0.0.1:${info.http}/bytes/10000000`)
      big.body.cancel()
      const [cancelled] = rec.of('undici:request:error')
      assert.equal(cancelled.error.code, 'cancelled')
    } finally {
      rec.stop()
      await client.close()
    }
  })

  test('GOAWAY: quiver:connection:goaway, then the connection closes', async () => {
    const goaway = await startServer(['--h2-goaway-after', '1'])
    const rec = listen(['quiver:event', 'quiver:connection:goaway', 'quiver:connection:closed', 'quiver:connection:opened'])
    const client = new Client({ protocol: 'http2' })
    try {
      for (let i = 0; i < 3; i++) {
        const res = await client.request(`http://127.0.0.1:${goaway.h2c}/health`)
        assert.equal(await res.body.text(), 'ok')
      }
      await until(() => rec.of('quiver:connection:goaway').length > 0, 'goaway')
      const [m] = rec.of('quiver:connection:goaway')
      assert.equal(m.origin, `http://127.0.0.1:${goaway.h2c}`)
      assert.equal(m.protocol, 'http2')
      assert.ok(rec.of('quiver:connection:opened').some((o) => o.connection === m.connection))
      assert.ok(rec.events().some((e) => e.name === 'goaway' && e.connection === m.connection))
      await until(() => rec.of('quiver:connection:closed').some((c) => c.connection === m.connection), 'the drained connection closing')
    } finally {
      rec.stop()
      await client.close()
      await goaway.stop()
    }
  })

  test('a subscriber that comes later is heard from the next request on', async () => {
    const client = new Client()
    try {
      await (await client.request(`http://127.0.0.1:${info.http}/health`)).body.dump()
      const rec = listen(['quiver:event', 'undici:client:sendHeaders'])
      try {
        await (await client.request(`http://127.0.0.1:${info.http}/health`)).body.dump()
        assert.deepEqual(rec.events().map((e) => e.name),
          ['request_start', 'connection_acquired', 'headers_sent', 'body_sent', 'response_headers', 'response_end'])
        assert.equal(rec.of('undici:client:sendHeaders').length, 1)
      } finally {
        rec.stop()
      }
    } finally {
      await client.close()
    }
  })
})

describe('nothing is built while nobody listens', () => {
  test('the native listener builds no event until told somebody listens', async () => {
    let woken = 0
    const client = new native.NativeClient([{ name: 'proxy_from_env', value: false }], () => { woken++ })
    const send = async () => {
      const res = await client.send('GET', `http://127.0.0.1:${info.http}/health`, [], {}, null, null, null, null, null, null)
      await res.readAll()
    }
    try {
      await send()
      await sleep(50)
      assert.equal(client.takeEvents().events.length, 0)
      assert.equal(woken, 0)
      client.setEventsWanted(true)
      await send()
      await until(() => woken > 0, 'the wake-up')
      const { events, dropped } = client.takeEvents()
      assert.equal(dropped, 0)
      assert.deepEqual(events.filter((e) => e.request !== undefined && e.request !== null).map((e) => e.name),
        ['request_start', 'connection_acquired', 'headers_sent', 'body_sent', 'response_headers', 'response_end'])
      assert.ok(events.every((e) => typeof e.time === 'number' && e.origin === `http://127.0.0.1:${info.http}`))
      client.setEventsWanted(false)
      await send()
      await sleep(50)
      assert.equal(client.takeEvents().events.length, 0)
    } finally {
      client.close()
    }
  })

  test('a client without subscribers publishes nothing; requests work as before', async () => {
    const published = []
    const spy = (m, name) => published.push(name)
    const client = new Client()
    try {
      // Subscribed to a channel quiver does not use: nothing changes.
      dc.subscribe('undici:unrelated', spy)
      const res = await client.request(`http://127.0.0.1:${info.http}/headers`)
      const { headers } = await res.body.json()
      assert.ok(!headers.some(([name]) => name === 'traceparent'))
      assert.deepEqual(published, [])
      assert.equal(res.timings.reused, false) // timings are always there
    } finally {
      dc.unsubscribe('undici:unrelated', spy)
      await client.close()
    }
  })
})

describe('quiver.Agent connection events', () => {
  test('connect, disconnect and connectionError, as undici\'s Agent emits them', async () => {
    const agent = new Agent()
    const seen = []
    agent.on('connect', (origin, targets) => seen.push(['connect', origin, targets]))
    agent.on('disconnect', (origin, targets, error) => seen.push(['disconnect', origin, targets, error]))
    agent.on('connectionError', (origin, targets, error) => seen.push(['connectionError', origin, targets, error]))
    try {
      const { statusCode, body } = await undici.request(`http://127.0.0.1:${info.http}/health`, { dispatcher: agent })
      assert.equal(statusCode, 200)
      await body.text()
      await until(() => seen.some((s) => s[0] === 'connect'), 'connect')
      const [, origin, targets] = seen.find((s) => s[0] === 'connect')
      assert.ok(origin instanceof URL)
      assert.equal(origin.origin, `http://127.0.0.1:${info.http}`)
      assert.deepEqual(targets, [agent])

      const port = await closedPort()
      await assert.rejects(undici.request(`http://127.0.0.1:${port}/`, { dispatcher: agent }), (e) => e.code === 'connect_refused')
      await until(() => seen.some((s) => s[0] === 'connectionError'), 'connectionError')
      const [, failedOrigin, , error] = seen.find((s) => s[0] === 'connectionError')
      assert.equal(failedOrigin.port, String(port))
      assert.equal(error.code, 'connect_refused')

      await agent.close()
      await until(() => seen.some((s) => s[0] === 'disconnect'), 'disconnect')
      const [, closedOrigin, closedTargets, reason] = seen.find((s) => s[0] === 'disconnect')
      assert.equal(closedOrigin.origin, `http://127.0.0.1:${info.http}`)
      assert.deepEqual(closedTargets, [agent])
      assert.ok(reason instanceof QuiverError)
      assert.equal(reason.code, 'connection_closed')
      assert.equal(typeof reason.reason, 'string')
    } finally {
      await agent.close()
    }
  })
})

describe('progress', () => {
  test('a streamed upload, read while it runs and at the end', async () => {
    const client = new Client()
    try {
      for (const declared of [true, false]) {
        const progress = new Progress()
        assert.deepEqual(progress.toJSON(), { uploaded: 0, uploadTotal: null, downloaded: 0, downloadTotal: null })
        const seen = []
        async function * chunks() {
          for (let i = 0; i < 10; i++) {
            seen.push(progress.uploaded)
            yield Buffer.alloc(100000, 120)
            await sleep(5)
          }
        }
        const headers = declared ? { 'content-length': '1000000' } : {}
        const res = await client.request(`http://127.0.0.1:${info.http}/sink`, { method: 'POST', body: chunks(), headers, progress })
        assert.deepEqual(await res.body.json(), { received: 1000000 })
        assert.equal(progress.uploaded, 1000000)
        assert.equal(progress.uploadTotal, declared ? 1000000 : null)
        // Read while it ran: never going back, never ahead of what the source gave.
        for (let i = 1; i < seen.length; i++) {
          assert.ok(seen[i] >= seen[i - 1], seen.join(','))
          assert.ok(seen[i] <= i * 100000, seen.join(','))
        }
        assert.ok(seen.at(-1) > 0, seen.join(','))
      }
    } finally {
      await client.close()
    }
  })

  test('a large download over each protocol, read while it runs and at the end', async () => {
    const total = 5 * 1024 * 1024
    const cases = [
      { url: `http://127.0.0.1:${info.http}`, options: {} },
      { url: `https://localhost:${info.https}`, options: { caFile: info.ca_file } },
      { url: `https://localhost:${info.h3}`, options: { caFile: info.ca_file, protocol: 'http3' } },
    ]
    for (const { url, options } of cases) {
      const client = new Client(options)
      try {
        const progress = new Progress()
        const res = await client.request(`${url}/bytes/${total}`, { progress })
        assert.equal(progress.downloadTotal, total, url)
        let taken = 0
        for await (const chunk of res.body) {
          taken = checkPattern(chunk, taken)
          // Core counts what quiver read for the caller: what JavaScript took, and at most
          // the bounded read-ahead beyond it.
          assert.ok(progress.downloaded >= taken, `${url}: ${progress.downloaded} < ${taken}`)
          assert.ok(progress.downloaded <= taken + 2 * 1024 * 1024, `${url}: ${progress.downloaded} vs ${taken}`)
        }
        assert.equal(taken, total)
        assert.equal(progress.downloaded, total, url)
        assert.equal(progress.uploaded, 0)
      } finally {
        await client.close()
      }
    }
    // Through quiver.fetch too, and a decoded body has no total.
    const progress = new Progress()
    const res = await quiverFetch(`http://127.0.0.1:${info.http}/encoded/gzip/50000`, { progress })
    assert.equal((await res.arrayBuffer()).byteLength, 50000)
    assert.equal(progress.downloaded, 50000)
    assert.equal(progress.downloadTotal, null)
  })

  test('progress must be a quiver.Progress', async () => {
    const client = new Client()
    try {
      await assert.rejects(client.request(`http://127.0.0.1:${info.http}/`, { progress: { uploaded: 0 } }),
        (e) => e instanceof QuiverError && e.code === 'invalid_config')
    } finally {
      await client.close()
    }
  })
})

describe('OpenTelemetry', () => {
  test('@opentelemetry/instrumentation-undici records one span per quiver request and propagates its context', async () => {
    const { UndiciInstrumentation } = require('@opentelemetry/instrumentation-undici')
    const { BasicTracerProvider, InMemorySpanExporter, SimpleSpanProcessor } = require('@opentelemetry/sdk-trace-base')
    const { propagation, SpanKind, SpanStatusCode } = require('@opentelemetry/api')
    const { W3CTraceContextPropagator } = require('@opentelemetry/core')

    const exporter = new InMemorySpanExporter()
    const provider = new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(exporter)] })
    propagation.setGlobalPropagator(new W3CTraceContextPropagator())
    const instrumentation = new UndiciInstrumentation()
    instrumentation.setTracerProvider(provider)
    instrumentation.enable()
    const saved = undici.getGlobalDispatcher()
    const client = new Client()
    const agent = new Agent({ caFile: info.ca_file })
    const traceparents = []
    /** The server's view of the request: the traceparent it got. */
    const seenBy = async (body) => {
      const { headers } = typeof body.json === 'function' ? await body.json() : body
      const values = headers.filter(([name]) => name === 'traceparent').map(([, v]) => v)
      assert.equal(values.length, 1, JSON.stringify(headers))
      traceparents.push(values[0])
      return values[0]
    }
    try {
      // client.request
      const res = await client.request(`http://127.0.0.1:${info.http}/headers?q=1`)
      await seenBy(res.body)
      // Node's global fetch through quiver.Agent (HTTP/2 over TLS)
      undici.setGlobalDispatcher(agent)
      const fetched = await fetch(`https://localhost:${info.https}/headers`, { method: 'POST', body: 'x' })
      await seenBy(await fetched.json())
      // A failure: an error span.
      const port = await closedPort()
      await assert.rejects(client.request(`http://127.0.0.1:${port}/nothing`), QuiverError)
      await assert.rejects(fetch(`http://127.0.0.1:${port}/again`), TypeError)

      const spans = exporter.getFinishedSpans()
      assert.equal(spans.length, 4, spans.map((s) => s.attributes['url.full']).join(', '))
      const byUrl = (url) => {
        const found = spans.filter((s) => s.attributes['url.full'] === url)
        assert.equal(found.length, 1, url)
        return found[0]
      }

      const first = byUrl(`http://127.0.0.1:${info.http}/headers?q=1`)
      assert.equal(first.kind, SpanKind.CLIENT)
      assert.equal(first.name, 'GET')
      assert.equal(first.attributes['http.request.method'], 'GET')
      assert.equal(first.attributes['server.address'], '127.0.0.1')
      assert.equal(first.attributes['server.port'], info.http)
      assert.equal(first.attributes['http.response.status_code'], 200)
      assert.equal(first.attributes['network.peer.address'], '127.0.0.1')
      assert.equal(first.attributes['network.peer.port'], info.http)
      assert.equal(first.attributes['network.protocol.version'], '1.1')
      assert.notEqual(first.status.code, SpanStatusCode.ERROR)

      const second = byUrl(`https://localhost:${info.https}/headers`)
      assert.equal(second.attributes['http.request.method'], 'POST')
      assert.equal(second.attributes['server.address'], 'localhost')
      assert.equal(second.attributes['server.port'], info.https)
      assert.equal(second.attributes['http.response.status_code'], 200)
      assert.equal(second.attributes['network.protocol.version'], '2')

      // The traceparent the server got is each span's own context.
      for (const [span, sent] of [[first, traceparents[0]], [second, traceparents[1]]]) {
        const { traceId, spanId } = span.spanContext()
        assert.equal(sent, `00-${traceId}-${spanId}-01`)
      }

      for (const url of [`http://127.0.0.1:${port}/nothing`, `http://127.0.0.1:${port}/again`]) {
        const failed = byUrl(url)
        assert.equal(failed.status.code, SpanStatusCode.ERROR)
        assert.equal(failed.attributes['error.type'], 'connect_refused')
        assert.equal(failed.attributes['server.port'], port)
        assert.ok(failed.events.some((e) => e.name === 'exception'))
      }
      // Spans end as requests end: none is left open.
      assert.ok(spans.every((s) => s.ended))
    } finally {
      instrumentation.disable()
      undici.setGlobalDispatcher(saved)
      await client.close()
      await agent.close()
      await provider.shutdown()
    }
  })
})
