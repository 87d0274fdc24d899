'use strict'
// Requests over every protocol core speaks: methods, headers, bodies, JSON, trailers,
// streamed responses and streamed uploads.

const assert = require('node:assert/strict')
const { Readable } = require('node:stream')
const { before, after, describe, test } = require('node:test')

const { Client } = require('quiver-http')
const { startServer, protocols, pattern, checkPattern, sleep } = require('./helpers.js')

let info
before(async () => {
  info = await startServer()
})
after(async () => {
  await info.stop()
})

const METHODS = ['GET', 'POST', 'PUT', 'DELETE', 'PATCH', 'OPTIONS', 'TRACE', 'PURGE']

// `describe` bodies run before `before()`, so the protocol list is built from a placeholder
// and resolved against the live server inside each test.
const PROTOCOLS = protocols({ http: 0, https: 0, h2c: 0, h3: 0, ca_file: '' }).map((p) => p.name)

for (const [index, name] of PROTOCOLS.entries()) {
  describe(name, () => {
    let proto
    let client
    before(() => {
      proto = protocols(info)[index]
      client = new Client(proto.options)
    })
    after(async () => {
      await client.close()
    })

    test('every method', async () => {
      for (const method of METHODS) {
        const res = await client.request(proto.url('/headers'), { method })
        assert.equal(res.statusCode, 200, method)
        assert.equal(res.httpVersion, proto.version)
        const seen = await res.body.json()
        assert.equal(seen.method, method)
        assert.equal(seen.version, `HTTP/${proto.version}`)
      }
      // Standard methods are upper-cased (as fetch() does); other tokens go as given.
      const lower = await client.request(proto.url('/headers'), { method: 'post' })
      assert.equal((await lower.body.json()).method, 'POST')
      const head = await client.request(proto.url('/bytes/1234'), { method: 'HEAD' })
      assert.equal(head.statusCode, 200)
      assert.equal(head.headers['content-length'], '1234')
      assert.equal((await head.body.bytes()).length, 0)
    })

    test('request and response headers', async () => {
      const res = await client.request(proto.url('/headers?x=1'), {
        headers: { 'x-one': '1', 'x-many': ['a', 'b'], 'x-num': 42 },
      })
      const seen = await res.body.json()
      assert.equal(seen.query, 'x=1')
      const got = seen.headers.filter(([n]) => n.startsWith('x-'))
      assert.deepEqual(got, [['x-one', '1'], ['x-many', 'a'], ['x-many', 'b'], ['x-num', '42']])
      assert.equal(res.headers['content-type'], 'application/json')
      assert.match(res.headers['x-conn-id'], /^\d+$/)

      // Pairs, flat arrays, Headers and Map are accepted too.
      for (const headers of [[['x-p', '1']], ['x-p', '1'], new Headers({ 'x-p': '1' }), new Map([['x-p', '1']])]) {
        const r = await client.request(proto.url('/headers'), { headers })
        const s = await r.body.json()
        assert.deepEqual(s.headers.filter(([n]) => n === 'x-p'), [['x-p', '1']])
      }
    })

    test('status codes and bodies', async () => {
      const res = await client.request(proto.url('/status/418'))
      assert.equal(res.statusCode, 418)
      assert.equal(await res.body.text(), 'status 418')
      const empty = await client.request(proto.url('/status/204'))
      assert.equal(empty.statusCode, 204)
      assert.equal(await empty.body.text(), '')
      const missing = await client.request(proto.url('/nothing-here'))
      assert.equal(missing.statusCode, 404)
      await missing.body.dump()
    })

    test('request bodies: string, Buffer, Uint8Array, ArrayBuffer, URLSearchParams', async () => {
      const cases = [
        ['hello', 'hello'],
        [Buffer.from('buffer body'), 'buffer body'],
        [new TextEncoder().encode('typed array'), 'typed array'],
        [new TextEncoder().encode('array buffer').buffer, 'array buffer'],
        [new URLSearchParams({ a: '1', b: 'x y' }), 'a=1&b=x+y'],
        [new Blob(['from ', 'a blob']), 'from a blob'],
      ]
      for (const [body, expected] of cases) {
        const res = await client.request(proto.url('/echo'), {
          method: 'POST',
          body,
          headers: { 'content-type': 'text/plain' },
        })
        assert.equal(res.statusCode, 200)
        assert.equal(res.headers['x-echo-method'], 'POST')
        assert.equal(res.headers['content-type'], 'text/plain')
        assert.equal(await res.body.text(), expected)
      }
    })

    test('JSON both ways, and every body mixin', async () => {
      const payload = { hello: 'world', n: [1, 2, 3], nested: { ok: true } }
      const res = await client.request(proto.url('/echo'), {
        method: 'PUT',
        body: JSON.stringify(payload),
        headers: { 'content-type': 'application/json' },
      })
      assert.deepEqual(await res.body.json(), payload)
      assert.equal(res.body.bodyUsed, true)
      await assert.rejects(res.body.text(), TypeError)

      const url = proto.url('/bytes/100000')
      const ab = await (await client.request(url)).body.arrayBuffer()
      assert.ok(ab instanceof ArrayBuffer)
      assert.deepEqual(Buffer.from(ab), pattern(0, 100000))
      const bytes = await (await client.request(url)).body.bytes()
      assert.ok(bytes instanceof Uint8Array)
      assert.equal(bytes.length, 100000)
      const blob = await (await client.request(url)).body.blob()
      assert.equal(blob.size, 100000)
    })

    test('trailers', async () => {
      const res = await client.request(proto.url('/trailers'), { headers: { te: 'trailers' } })
      assert.deepEqual(res.trailers, {})
      assert.equal(await res.body.text(), 'hello trailers')
      assert.deepEqual(res.trailers, { 'x-trailer-one': '1', 'x-trailer-two': '2' })
    })

    test('streamed response: for await, Readable, ReadableStream', async () => {
      const size = 3 * 1024 * 1024 + 17
      const url = proto.url(`/bytes/${size}?chunked=1&chunk_size=7000`)
      let res = await client.request(url)
      let offset = 0
      let batches = 0
      for await (const chunk of res.body) {
        assert.ok(Buffer.isBuffer(chunk))
        offset = checkPattern(chunk, offset)
        batches++
      }
      assert.equal(offset, size)
      // Chunks of 7000 bytes cross in batches, not one call each.
      assert.ok(batches < size / 7000, `${batches} batches`)

      res = await client.request(url)
      offset = 0
      for await (const chunk of res.body.toReadable()) offset = checkPattern(chunk, offset)
      assert.equal(offset, size)

      res = await client.request(url)
      offset = 0
      for await (const chunk of res.body.toWeb()) {
        assert.ok(chunk instanceof Uint8Array)
        offset = checkPattern(chunk, offset)
      }
      assert.equal(offset, size)
    })

    test('leaving a body early releases the request', async () => {
      const res = await client.request(proto.url('/bytes/50000000'))
      for await (const chunk of res.body) {
        assert.ok(chunk.length > 0)
        break
      }
      const again = await client.request(proto.url('/health'))
      assert.equal(await again.body.text(), 'ok')
    })

    test('streamed uploads: async generator, Readable, ReadableStream', async () => {
      async function* generate() {
        for (let i = 0; i < 50; i++) {
          await sleep(0)
          yield `part ${i};`
        }
      }
      let expected = ''
      for (let i = 0; i < 50; i++) expected += `part ${i};`
      let res = await client.request(proto.url('/echo'), { method: 'POST', body: generate() })
      assert.equal(await res.body.text(), expected)

      const chunks = Array.from({ length: 64 }, (_, i) => pattern(i * 16384, 16384))
      res = await client.request(proto.url('/sink'), { method: 'POST', body: Readable.from(chunks) })
      assert.deepEqual(await res.body.json(), { received: 64 * 16384 })

      const web = new ReadableStream({
        start(controller) {
          controller.enqueue(new TextEncoder().encode('web '))
          controller.enqueue(new TextEncoder().encode('stream'))
          controller.close()
        },
      })
      res = await client.request(proto.url('/echo'), { method: 'POST', body: web })
      assert.equal(await res.body.text(), 'web stream')

      // A sync iterable of Buffers.
      res = await client.request(proto.url('/echo'), { method: 'POST', body: [Buffer.from('a'), Buffer.from('b')] })
      assert.equal(await res.body.text(), 'ab')
    })

    test('uploads are pulled as the connection sends, never read ahead', async (t) => {
      // /slow-sink reads 16 KiB about every millisecond: the generator must not run ahead of
      // the server by more than what sits in between (without backpressure it would be drained
      // at once). In between: on HTTP/1.1 the kernel's socket buffers (a few MiB on loopback),
      // on HTTP/2 and HTTP/3 the server's 1 MiB stream window. (HTTP/3 gets a smaller upload:
      // the server takes one QUIC frame per read there, about 0.5 MB/s.)
      const MiB = 1024 * 1024
      const h3 = proto.version === '3.0'
      const chunk = 64 * 1024
      const total = (h3 ? 3 : 24) * MiB
      const bound = { '1.1': 16, '2.0': 4, '3.0': 2.5 }[proto.version] * MiB
      let produced = 0
      let worstLead = 0
      const stats = new Client(protocols(info)[0].options)
      async function* generate() {
        while (produced < total) {
          produced += chunk
          yield pattern(0, chunk)
        }
      }
      // The server's counter covers every request it served: count from here.
      const receivedSoFar = async () => {
        const r = await stats.request(`http://127.0.0.1:${info.http}/stats`)
        return (await r.body.json()).bytes_received
      }
      const base = await receivedSoFar()
      let polls = 0
      const watcher = setInterval(async () => {
        try {
          const received = (await receivedSoFar()) - base
          worstLead = Math.max(worstLead, produced - received)
          polls++
        } catch {
          // A late poll after the end: ignore.
        }
      }, 100)
      try {
        const res = await client.request(proto.url('/slow-sink?chunk=16384&delay_ms=1'), { method: 'POST', body: generate() })
        assert.deepEqual(await res.body.json(), { received: total })
      } finally {
        clearInterval(watcher)
        await stats.close()
      }
      assert.ok(polls > 5, `${polls} polls`)
      t.diagnostic(`the upload ran at most ${(worstLead / 1048576).toFixed(2)} MiB ahead of the server`)
      assert.ok(worstLead < bound, `the upload ran ${worstLead} bytes ahead of the server`)
    })

    test('stats', async () => {
      const before = client.stats()
      const res = await client.request(proto.url('/health'))
      await res.body.text()
      const now = client.stats()
      assert.equal(now.requests, before.requests + 1)
      assert.ok(now.origins.length >= 1)
      const origin = now.origins.find((o) => o.origin === new URL(proto.url('/')).origin)
      assert.ok(origin, JSON.stringify(now.origins))
      assert.ok(origin.requests >= 1)
      assert.ok(origin.connectionsOpened >= 1)
      assert.equal(origin.queued, 0)
    })
  })
}
