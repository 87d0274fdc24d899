'use strict'
// A slow consumer of a 256 MiB body keeps memory bounded: nothing between the server and
// JavaScript buffers more than windows and a batch, whatever the body's size.

const assert = require('node:assert/strict')
const { before, after, test } = require('node:test')

const { Client } = require('quiver-http')
const { startServer, protocols, sleep } = require('./helpers.js')

const SIZE = 268435456
const MiB = 1024 * 1024

let info
before(async () => {
  info = await startServer()
})
after(async () => {
  await info.stop()
})

async function slowThenFast(proto) {
  const client = new Client(proto.options)
  try {
    const res = await client.request(proto.url(`/bytes/${SIZE}`))
    assert.equal(res.statusCode, 200)
    assert.equal(res.headers['content-length'], String(SIZE))
    const it = res.body[Symbol.asyncIterator]()
    let total = 0
    const first = await it.next()
    total += first.value.length
    global.gc?.()
    const base = process.memoryUsage().rss
    let peak = base
    // Slow: one batch every 100 ms for 3 s.
    const until = Date.now() + 3000
    while (Date.now() < until) {
      const { value, done } = await it.next()
      assert.equal(done, false)
      total += value.length
      peak = Math.max(peak, process.memoryUsage().rss)
      await sleep(100)
    }
    const slowTotal = total
    const growth = peak - base
    // Then fast: the rest, as quickly as it comes.
    for (;;) {
      const { value, done } = await it.next()
      if (done) break
      total += value.length
    }
    assert.equal(total, SIZE)
    assert.ok(slowTotal < 64 * MiB, `the slow phase read ${slowTotal} bytes`)
    assert.ok(growth < 64 * MiB, `RSS grew ${(growth / MiB).toFixed(1)} MiB while reading slowly`)
    return { growth, slowTotal }
  } finally {
    await client.close()
  }
}

for (const index of [0, 3, 4]) {
  // HTTP/1.1 (TCP flow control), HTTP/2 h2c (stream windows), HTTP/3 (QUIC windows).
  test(`slow consumer of 256 MiB keeps memory bounded: ${['HTTP/1.1', '', '', 'HTTP/2', 'HTTP/3'][index]}`, async (t) => {
    const { growth, slowTotal } = await slowThenFast(protocols(info)[index])
    t.diagnostic(`RSS growth ${(growth / MiB).toFixed(1)} MiB; ${(slowTotal / MiB).toFixed(1)} MiB read slowly`)
  })
}
