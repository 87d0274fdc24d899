'use strict'
// Getting connected, from Node: Happy Eyeballs past a black-holed first address (`resolve`,
// `happyEyeballsDelay`), the dial's own error for a caller waiting on it, `dnsCacheTtl`, Unix
// domain sockets (`unixSocket`) and SOCKS5 proxies, against the test server.

const assert = require('node:assert/strict')
const { before, after, test } = require('node:test')

const { Client, QuiverError } = require('quiver-http')
const { startServer } = require('./helpers.js')

let info
let direct
before(async () => {
  info = await startServer()
  direct = new Client({ proxyFromEnv: false })
})
after(async () => {
  await direct.close()
  await info.stop()
})

async function rejection(promise) {
  try {
    await promise
  } catch (e) {
    assert.ok(e instanceof QuiverError, `expected a QuiverError, got ${e}`)
    return e
  }
  assert.fail('expected a rejection')
}

async function serverStats() {
  const res = await direct.request(`http://127.0.0.1:${info.http}/stats`)
  return res.body.json()
}

test('a black-holed first address costs about one attempt delay', async () => {
  const port = info.blackhole
  const client = new Client({
    resolve: `eyeballs.test:${port}:127.0.0.2,127.0.0.1`,
    connectTimeout: 10000,
    happyEyeballsDelay: 250,
    dnsCacheTtl: null,
  })
  const started = Date.now()
  const res = await client.request(`http://eyeballs.test:${port}/health`)
  assert.equal(await res.body.text(), 'ok')
  const took = Date.now() - started
  assert.ok(took >= 240 && took < 4000, `${took} ms`)
  await client.close()
})

test('a caller waiting on its dial gets the dial error', async () => {
  const port = info.blackhole
  const client = new Client({ resolve: `hole.test:${port}:127.0.0.2`, connectTimeout: 600, checkoutTimeout: 100 })
  const err = await rejection(client.request(`http://hole.test:${port}/`))
  assert.equal(err.code, 'connect_timeout', err.message)
  await client.close()
  assert.throws(() => new Client({ resolve: 'api.test:80:nope' }), (e) => e.code === 'invalid_config' && /resolve/.test(e.message))
})

test('unix sockets carry HTTP/1.1 and h2c', async () => {
  const client = new Client({
    unixSocket: info.unix_http,
    pools: { 'http://h2c.local': { unixSocket: info.unix_h2c, protocol: 'http2' } },
  })
  const one = await client.request('http://localhost/health')
  assert.equal(await one.body.text(), 'ok')
  assert.equal(one.httpVersion, '1.1')
  const two = await client.request('http://h2c.local/health')
  assert.equal(await two.body.text(), 'ok')
  assert.equal(two.httpVersion, '2.0')
  await client.close()
  const missing = new Client({ unixSocket: '/nonexistent/quiver.sock' })
  assert.equal((await rejection(missing.request('http://localhost/'))).code, 'connect_failed')
  await missing.close()
})

test('SOCKS5 proxies with and without authentication', async () => {
  const port = info.http
  for (const [proxy, seen] of [
    [`socks5://127.0.0.1:${info.socks5}`, 'ipv'], // resolved here: an address
    [`socks5h://quiver:secret@127.0.0.1:${info.socks5_auth}`, `domain localhost:${port}`],
  ]) {
    const client = new Client({ proxy })
    const res = await client.request(`http://localhost:${port}/health`)
    assert.equal(await res.body.text(), 'ok')
    assert.ok((await serverStats()).socks_last_target.startsWith(seen))
    await client.close()
  }
  const wrong = new Client({ proxy: `socks5://quiver:nope@127.0.0.1:${info.socks5_auth}` })
  const err = await rejection(wrong.request(`http://localhost:${port}/health`))
  assert.equal(err.code, 'proxy_connect_failed')
  assert.ok(!err.message.includes('nope'))
  await wrong.close()
  assert.throws(() => new Client({ proxy: `socks5://127.0.0.1:${info.socks5}`, protocol: 'http3' }), (e) => e.code === 'invalid_config')
})

async function versionOf(client, url) {
  const res = await client.request(url)
  assert.equal(await res.body.text(), 'ok')
  return res.httpVersion
}

function altOrigin(client, port) {
  const origin = client.stats().origins.find((o) => o.origin === `https://localhost:${port}`)
  assert.ok(origin, 'the origin has a pool')
  return origin
}

test('auto moves to HTTP/3 from alt-svc; altSvc: false stays on TCP', async () => {
  const port = info.https_alt
  const url = `https://localhost:${port}/`
  // A long head start: QUIC wins the race even on a loaded machine.
  const client = new Client({ caFile: info.ca_file, proxyFromEnv: false, happyEyeballsDelay: 3000 })
  try {
    assert.equal(await versionOf(client, url), '2.0')
    for (let i = 0; i < 3; i++) assert.equal(await versionOf(client, url), '3.0')
    const origin = altOrigin(client, port)
    assert.equal(origin.protocol, 'http3')
    assert.ok(origin.altSvc.startsWith(`h3=":${info.h3}"; ma=`), origin.altSvc)
    assert.equal(origin.fallbacks, 0)
    assert.equal(origin.altSvcBroken, false)
  } finally {
    await client.close()
  }
  const tcp = new Client({ caFile: info.ca_file, proxyFromEnv: false, altSvc: false })
  try {
    assert.equal(await versionOf(tcp, url), '2.0')
    assert.equal(await versionOf(tcp, url), '2.0')
    assert.equal(altOrigin(tcp, port).altSvc, undefined)
  } finally {
    await tcp.close()
  }
})

test('black-holed UDP falls back to TCP and marks the alternative broken', async () => {
  const port = info.https_alt_blocked
  const url = `https://localhost:${port}/`
  const client = new Client({
    caFile: info.ca_file,
    proxyFromEnv: false,
    connectTimeout: 2000,
    happyEyeballsDelay: 100,
  })
  try {
    assert.equal(await versionOf(client, url), '2.0')
    const started = Date.now()
    assert.equal(await versionOf(client, url), '2.0')
    assert.ok(Date.now() - started < 1500, `${Date.now() - started} ms`)
    assert.equal(altOrigin(client, port).fallbacks, 1)
    assert.equal(client.stats().fallbacks, 1)
    const deadline = Date.now() + 20000
    while (!altOrigin(client, port).altSvcBroken) {
      assert.ok(Date.now() < deadline, 'never marked broken')
      await new Promise((resolve) => setTimeout(resolve, 50))
    }
    assert.equal(await versionOf(client, url), '2.0')
    const origin = altOrigin(client, port)
    assert.deepEqual([origin.fallbacks, origin.errors, origin.protocol], [1, 0, 'http2'])
  } finally {
    await client.close()
  }
})

function manyOrigins(n) {
  const port = info.http
  const names = Array.from({ length: n }, (_, i) => `o${i + 1}.test`)
  return {
    resolve: names.map((name) => `${name}:${port}:127.0.0.1`).join(' '),
    origins: names.map((name) => `http://${name}:${port}`),
  }
}

test('the total connection cap holds across 20 origins', async () => {
  const { resolve, origins } = manyOrigins(20)
  const client = new Client({ resolve, maxTotalConnections: 4, checkoutTimeout: 60000, proxyFromEnv: false })
  try {
    let peak = 0
    const one = async (i) => {
      const res = await client.request(`${origins[i % 20]}/slow/5`)
      peak = Math.max(peak, client.stats().connections)
      return res.body.text()
    }
    const texts = await Promise.all(Array.from({ length: 100 }, (_, i) => one(i)))
    assert.deepEqual(new Set(texts), new Set(['slow']))
    const stats = client.stats()
    assert.equal(stats.origins.length, 20)
    assert.equal(stats.errors, 0)
    // Pool-by-pool stats can see a connection moving between pools twice.
    assert.ok(peak <= 6, `${peak}`)
  } finally {
    await client.close()
  }
})

test('the total cap evicts idle connections and times out when all are busy', async () => {
  const { resolve, origins } = manyOrigins(2)
  const client = new Client({ resolve, maxTotalConnections: 1, checkoutTimeout: 300, proxyFromEnv: false })
  try {
    for (const origin of [...origins, ...origins]) {
      const res = await client.request(`${origin}/health`)
      assert.equal(await res.body.text(), 'ok')
    }
    assert.equal(client.stats().connectionsOpened, 4)
    const slow = client.request(`${origins[0]}/slow/1500`).then((res) => res.body.text())
    await new Promise((resolve) => setTimeout(resolve, 200))
    const e = await rejection(client.request(`${origins[1]}/health`))
    assert.equal(e.code, 'checkout_timeout')
    assert.ok(e.message.includes('max_total_connections'), e.message)
    assert.equal(await slow, 'slow')
  } finally {
    await client.close()
  }
  assert.throws(
    () => new Client({ pools: { 'http://o1.test': { maxTotalConnections: 2 } } }),
    (e) => e instanceof QuiverError && e.code === 'invalid_config',
  )
})

test('an HTTPS record puts the first request on HTTP/3', async () => {
  // `quiver.test` (in the server certificate) has HTTPS records on the test server's DNS
  // listener; TCP reaches it through a `resolve` override, QUIC through the address hint.
  const options = {
    caFile: info.ca_file,
    proxyFromEnv: false,
    resolve: `quiver.test:${info.https}:127.0.0.1`,
    happyEyeballsDelay: 3000,
  }
  const url = `https://quiver.test:${info.https}/`
  const client = new Client({ ...options, httpsRr: true, httpsRrNameserver: `127.0.0.1:${info.dns}` })
  try {
    assert.equal(await versionOf(client, url), '3.0')
    assert.equal(await versionOf(client, url), '3.0')
    const origin = client.stats().origins.find((o) => o.origin === `https://quiver.test:${info.https}`)
    assert.equal(origin.protocol, 'http3')
  } finally {
    await client.close()
  }
  const plain = new Client(options)
  try {
    assert.equal(await versionOf(plain, url), '2.0')
  } finally {
    await plain.close()
  }
  assert.throws(() => new Client({ httpsRrNameserver: 'localhost' }), (e) => e.code === 'invalid_config')
})
