'use strict'
// 1,000 concurrent requests, every one answered correctly, on each protocol.

const assert = require('node:assert/strict')
const { before, after, test } = require('node:test')

const { Client } = require('quiver-http')
const { startServer, protocols } = require('./helpers.js')

let info
before(async () => {
  info = await startServer()
})
after(async () => {
  await info.stop()
})

const NAMES = ['HTTP/1.1', 'HTTP/1.1 over TLS', 'HTTP/2 (https, ALPN)', 'HTTP/2 (h2c)', 'HTTP/3']

for (const [index, name] of NAMES.entries()) {
  test(`1000 concurrent requests: ${name}`, async () => {
    const proto = protocols(info)[index]
    const client = new Client({ ...proto.options, checkoutTimeout: 30000 })
    try {
      const one = async (i) => {
        // Each request has its own size and its own body, so a mix-up cannot pass.
        const n = 1 + ((i * 7919) % 5000)
        const res = await client.request(proto.url(`/echo?i=${i}`), {
          method: 'POST',
          body: `request ${i} `.repeat(n % 50 + 1),
          headers: { 'x-request': String(i) },
        })
        assert.equal(res.statusCode, 200)
        assert.equal(res.httpVersion, proto.version)
        assert.equal(await res.body.text(), `request ${i} `.repeat(n % 50 + 1))
        const bytes = await client.request(proto.url(`/bytes/${n}`))
        const body = await bytes.body.bytes()
        assert.equal(body.length, n)
        assert.equal(body[n - 1], 97 + ((n - 1) % 26))
        return i
      }
      const done = await Promise.all(Array.from({ length: 1000 }, (_, i) => one(i)))
      assert.equal(done.length, 1000)
      const stats = client.stats()
      assert.equal(stats.requests, 2000)
      assert.equal(stats.errors, 0)
      assert.equal(stats.active, 0)
    } finally {
      await client.close()
    }
  })
}
