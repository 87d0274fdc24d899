'use strict'
// RFC 9297 datagram channels on HTTP/3, against the server's /datagram-echo.

const assert = require('node:assert/strict')
const { before, after, test } = require('node:test')

const { Client, QuiverError } = require('quiver-http')
const { startServer, sleep } = require('./helpers.js')

let info
before(async () => {
  info = await startServer()
})
after(async () => {
  await info.stop()
})

test('send 100 datagrams, receive echoes intact, close', async () => {
  const client = new Client({ caFile: info.ca_file, protocol: 'http3' })
  const ch = await client.openDatagramChannel(`https://localhost:${info.h3}/datagram-echo`, {
    headers: { 'x-test': 'datagrams' },
  })
  assert.equal(ch.statusCode, 200)
  assert.equal(ch.httpVersion, '3.0')
  assert.equal(ch.headers['capsule-protocol'], '?1')
  assert.ok(ch.maxDatagramSize > 1000, `max ${ch.maxDatagramSize}`)
  assert.equal(ch.ended, false)

  const sent = new Set()
  for (let i = 0; i < 100; i++) {
    const payload = `datagram ${i} `.repeat(1 + (i % 20))
    sent.add(payload)
    ch.send(Buffer.from(payload))
    if (i % 10 === 9) await sleep(1) // let the path breathe: datagrams are unreliable
  }
  const received = []
  const first = await ch.recv()
  received.push(first.toString())
  // Whatever else came back within a moment.
  const deadline = Date.now() + 1000
  while (received.length < 100 && Date.now() < deadline) {
    const next = await Promise.race([ch.recv(), sleep(200).then(() => undefined)])
    if (next === undefined || next === null) break
    received.push(next.toString())
  }
  assert.ok(received.length >= 1)
  for (const r of received) assert.ok(sent.has(r), `an echo that was never sent: ${r}`)

  // The stream's data: the server says it is ready once, after the head.
  assert.equal((await ch.recvData()).toString(), 'echo ready')

  // Too large for the path: invalid, synchronous.
  assert.throws(() => ch.send(Buffer.alloc(ch.maxDatagramSize + 1)), (e) => e instanceof QuiverError && e.code === 'datagram_too_large' && e.class === 'invalid')

  await ch.close()
  assert.throws(() => ch.send('late'), (e) => e instanceof QuiverError && e.code === 'datagram_error')
  // The rest of the echoes, then the end of the stream and its trailers.
  for await (const d of ch) assert.ok(sent.has(d.toString()))
  assert.equal(await ch.recv(), null)
  assert.equal(ch.ended, true)
  const echoed = Number(ch.trailers['x-datagrams-echoed'])
  assert.ok(echoed >= received.length && echoed <= 100, `echoed ${echoed}`)
  await client.close()
})

test('several channels at once, and destroy()', async () => {
  const client = new Client({ caFile: info.ca_file, protocol: 'http3' })
  const url = `https://localhost:${info.h3}/datagram-echo`
  const channels = await Promise.all([1, 2, 3].map(() => client.openDatagramChannel(url)))
  for (const [i, ch] of channels.entries()) ch.send(`channel ${i}`)
  for (const [i, ch] of channels.entries()) assert.equal((await ch.recv()).toString(), `channel ${i}`)
  const waiting = channels[0].recv()
  channels[0].destroy()
  assert.equal(await waiting, null)
  for (const ch of channels.slice(1)) await ch.close()
  await client.close()
})
