'use strict'
// Proxies, against the test server's forward proxy: CONNECT tunnels and absolute-form requests
// over HTTP/1.1 and pooled HTTP/2 to the proxy, refusals, MASQUE UDP tunnels over HTTP/3 and
// HTTP/2, closeAllTunnels(), and the proxy environment variables (in a child process).

const assert = require('node:assert/strict')
const { spawn } = require('node:child_process')
const path = require('node:path')
const { before, after, describe, test } = require('node:test')

const { Client, QuiverError, UdpTunnel } = require('quiver-http')
const { startServer, sleep, closedPort } = require('./helpers.js')

const PACKAGE = path.resolve(__dirname, '..')
const AUTHORIZATION = 'Basic cXVpdmVyOnNlY3JldA==' // quiver:secret, which the proxy accepts

let info
let direct // reads the server's counters, never through a proxy
before(async () => {
  info = await startServer()
  direct = new Client({ proxyFromEnv: false })
})
after(async () => {
  await direct.close()
  await info.stop()
})

const proxyUrl = () => `http://127.0.0.1:${info.proxy}`
const proxyTlsUrl = () => `https://localhost:${info.proxy_tls}`
const proxyH3Url = () => `https://localhost:${info.proxy_h3}`
const withCredentials = (url) => url.replace('://', '://quiver:secret@')
/** Options every client here starts from: trust the server, ignore the environment. */
const base = () => ({ caFile: info.ca_file, proxyFromEnv: false, checkoutTimeout: 30000 })

async function serverStats() {
  const res = await direct.request(`http://127.0.0.1:${info.http}/stats`)
  return res.body.json()
}

/** GET `url`, expecting 200 and a JSON body. */
async function getJson(client, url) {
  const res = await client.request(url)
  assert.equal(res.statusCode, 200, url)
  return res.body.json()
}

const hasHeader = (json, name) => json.headers.some(([n]) => n === name)

async function rejectsWith(promise, code, cls) {
  let err
  try {
    await promise
  } catch (e) {
    err = e
  }
  assert.ok(err instanceof QuiverError, `expected a QuiverError, got ${err}`)
  assert.equal(err.code, code, err.message)
  assert.equal(err.class, cls, err.message)
  return err
}

describe('TCP targets through a proxy', () => {
  for (const [name, url, proxyProtocol] of [
    ['proxy, HTTP/1.1', proxyUrl, 'http1'],
    ['proxy_tls, HTTP/1.1', proxyTlsUrl, 'http1'],
    ['proxy_tls, HTTP/2 (pooled)', proxyTlsUrl, 'http2'],
  ]) {
    test(`https and http targets via ${name}; credentials never reach the origin`, async () => {
      const before = await serverStats()
      const proxy = withCredentials(url())
      const client = new Client({ ...base(), proxy, proxyProtocol })
      // https target: a CONNECT tunnel, TLS to the origin inside it (HTTP/2 by ALPN).
      const json = await getJson(client, `https://localhost:${info.https}/headers`)
      assert.equal(json.version, 'HTTP/2.0')
      assert.ok(!hasHeader(json, 'proxy-authorization'), 'the origin never sees proxy credentials')
      const big = await client.request(`https://localhost:${info.https}/bytes/100000`)
      assert.equal((await big.body.bytes()).length, 100000)
      // http target over HTTP/1.1: absolute form to the proxy, which forwards it.
      const http = new Client({ ...base(), proxy, proxyProtocol, protocol: 'http1' })
      const plain = await getJson(http, `http://127.0.0.1:${info.http}/headers`)
      assert.ok(!hasHeader(plain, 'proxy-authorization'))

      const after = await serverStats()
      assert.ok(after.proxy_connections > before.proxy_connections, 'connections to the proxy')
      assert.ok(after.proxy_tunnels > before.proxy_tunnels, 'a tunnel was used')
      assert.ok(after.proxy_forwarded > before.proxy_forwarded, 'the http request was forwarded')
      assert.ok(after.proxy_auth_seen >= before.proxy_auth_seen + 2, 'the proxy saw the credentials')

      const { proxies } = client.stats()
      if (proxyProtocol === 'http2') {
        assert.equal(proxies.length, 1, JSON.stringify(proxies))
        assert.equal(proxies[0].protocol, 'http2')
        assert.equal(proxies[0].origin, proxyTlsUrl())
        assert.ok(proxies[0].connectionsOpened >= 1)
      } else {
        assert.deepEqual(proxies, [], 'HTTP/1.1 proxy connections are not pooled')
      }
      await Promise.all([client.close(), http.close()])
    })
  }

  test('a pooled HTTP/2 proxy connection carries many tunnels', async () => {
    const client = new Client({ ...base(), proxy: proxyTlsUrl(), proxyProtocol: 'http2', protocol: 'http1', size: 3 })
    const before = await serverStats()
    const responses = await Promise.all(Array.from({ length: 30 }, () => client.request(`https://localhost:${info.https}/slow/20`)))
    for (const res of responses) assert.equal(await res.body.text(), 'slow')
    const after = await serverStats()
    assert.equal(after.proxy_connections - before.proxy_connections, 1, 'one HTTP/2 connection to the proxy')
    assert.equal(after.proxy_tunnels - before.proxy_tunnels, 3, 'one tunnel per origin connection')
    assert.equal(client.stats().proxies.length, 1)
    await client.close()
  })

  test('proxyAuthorization goes to the proxy only; a URL object is a proxy URL too', async () => {
    const before = await serverStats()
    const client = new Client({ ...base(), proxy: new URL(proxyUrl()), proxyAuthorization: AUTHORIZATION })
    const json = await getJson(client, `https://localhost:${info.https}/headers`)
    assert.ok(!hasHeader(json, 'proxy-authorization'))
    const after = await serverStats()
    assert.equal(after.proxy_auth_seen - before.proxy_auth_seen, 1)
    assert.equal(after.proxy_tunnels - before.proxy_tunnels, 1)
    await client.close()
  })

  test('proxy: none and proxyFromEnv: false go direct', async () => {
    for (const options of [{ proxy: 'none' }, { proxy: null }, {}]) {
      const before = await serverStats()
      const client = new Client({ ...base(), ...options })
      assert.equal(await (await client.request(`https://localhost:${info.https}/health`)).body.text(), 'ok')
      const after = await serverStats()
      assert.equal(after.proxy_tunnels, before.proxy_tunnels)
      assert.equal(after.proxy_connections, before.proxy_connections)
      await client.close()
    }
  })
})

describe('proxy errors', () => {
  test('a refused CONNECT: proxy_connect_failed, transient', async () => {
    const client = new Client({ ...base(), proxy: proxyUrl() })
    const err = await rejectsWith(client.request(`https://127.0.0.1:${await closedPort()}/`), 'proxy_connect_failed', 'transient')
    assert.match(err.message, /502/)
    await client.close()
  })

  test('wrong credentials: proxy_connect_failed (407), in the URL or as proxyAuthorization', async () => {
    for (const options of [
      { proxy: proxyUrl().replace('://', '://quiver:wrong@') },
      { proxy: proxyTlsUrl(), proxyAuthorization: 'Basic d3Jvbmc6d3Jvbmc=' },
    ]) {
      const client = new Client({ ...base(), ...options })
      const err = await rejectsWith(client.request(`https://localhost:${info.https}/health`), 'proxy_connect_failed', 'transient')
      assert.match(err.message, /407/)
      assert.ok(!err.message.includes('wrong@'), `the message shows no credentials: ${err.message}`)
      await client.close()
    }
  })

  test('bad proxy options: invalid_config from new Client()', () => {
    for (const options of [
      { proxy: 'socks4://127.0.0.1:1080' },
      { proxy: 'not a url' },
      { proxyProtocol: 'http4' },
      { proxyProtocol: 'http3' }, // MASQUE carries HTTP/3 origins only
      { proxyFromEnv: 'yes' },
      { proxyAuthorization: 42 },
    ]) {
      assert.throws(() => new Client({ ...base(), ...options }), (e) => e instanceof QuiverError && e.code === 'invalid_config' && e.class === 'invalid', JSON.stringify(options))
    }
    // http3 to the proxy is fine for HTTP/3 origins, per origin too.
    new Client({ ...base(), protocol: 'http3', proxy: proxyH3Url(), proxyProtocol: 'http3' })
    new Client({ ...base(), pools: { 'https://*.example.com': { protocol: 'http3', proxy: proxyH3Url(), proxyProtocol: 'h3' } } })
  })
})

const TIMEOUT = Symbol('timeout')

/** Receives from `tunnel` with a time limit; a receive that timed out is kept for the next call. */
function reader(tunnel) {
  let pending = null
  return async (ms) => {
    pending ??= tunnel.recv()
    let timer
    const r = await Promise.race([pending, new Promise((resolve) => {
      timer = setTimeout(resolve, Math.max(ms, 0), TIMEOUT)
    })])
    clearTimeout(timer)
    if (r !== TIMEOUT) pending = null
    return r
  }
}

/** Sends `payload` until its echo comes back (UDP may lose it either way). */
async function echo(tunnel, read, payload, sent) {
  sent.add(payload.toString())
  for (let attempt = 0; attempt < 20; attempt++) {
    tunnel.send(payload)
    const deadline = Date.now() + 200
    for (;;) {
      const got = await read(deadline - Date.now())
      if (got === TIMEOUT) break
      assert.notEqual(got, null, 'the tunnel ended')
      assert.ok(Buffer.isBuffer(got))
      if (got.equals(payload)) return
      // A late echo of an earlier (resent) payload.
      assert.ok(sent.has(got.toString()), `an echo that was never sent: ${got}`)
    }
  }
  assert.fail(`no echo of ${payload} after 20 sends`)
}

/** Resolves with what `iterable` yields until it ends (at most `ms`). */
async function drain(iterable, ms) {
  const out = []
  const done = (async () => {
    for await (const d of iterable) out.push(d)
  })()
  const r = await Promise.race([done.then(() => 'ended'), sleep(ms).then(() => TIMEOUT)])
  assert.equal(r, 'ended', `the tunnel did not end within ${ms} ms`)
  return out
}

describe('UDP tunnels (MASQUE CONNECT-UDP)', () => {
  for (const [protocol, url, version] of [['http3', proxyH3Url, '3.0'], ['http2', proxyTlsUrl, '2.0']]) {
    test(`over ${protocol}: 3 tunnels share one proxy connection; 20 payloads each echo intact`, async () => {
      const client = new Client(base())
      const before = await serverStats()
      const tunnels = []
      for (let i = 0; i < 3; i++) {
        tunnels.push(await client.openUdpTunnel(url(), '127.0.0.1', info.udp_echo, { protocol, headers: { 'x-test': 'tunnel' } }))
      }
      const opened = await serverStats()
      assert.equal(opened.proxy_connections - before.proxy_connections, 1, 'one pooled proxy connection')
      assert.equal(opened.proxy_tunnels - before.proxy_tunnels, 3)
      const { proxies } = client.stats()
      assert.equal(proxies.length, 1, JSON.stringify(proxies))
      assert.equal(proxies[0].protocol, protocol)

      const sent = new Set()
      for (const [n, tunnel] of tunnels.entries()) {
        assert.ok(tunnel instanceof UdpTunnel)
        assert.equal(tunnel.statusCode, 200)
        assert.equal(tunnel.httpVersion, version)
        assert.equal(tunnel.headers['capsule-protocol'], '?1')
        assert.match(tunnel.headers['x-proxy-relay-addr'], /^127\.0\.0\.1:\d+$/)
        assert.equal(tunnel.target, `127.0.0.1:${info.udp_echo}`)
        assert.ok(tunnel.maxPayload > 1000, `maxPayload ${tunnel.maxPayload}`)
        assert.equal(tunnel.ended, false)
        const read = reader(tunnel)
        for (let i = 0; i < 20; i++) {
          const payload = Buffer.from(`udp ${i} on tunnel ${n} via ${protocol} `.repeat(1 + ((i * 7) % 30)))
          await echo(tunnel, read, payload, sent)
        }
        // Binary payloads, the empty one included, cross unchanged.
        await echo(tunnel, read, Buffer.from([0, 1, 2, 255, 0]), sent)
        await echo(tunnel, read, Buffer.alloc(0), sent)
        // Too large for the tunnel: invalid, synchronous.
        assert.throws(() => tunnel.send(Buffer.alloc(tunnel.maxPayload + 1)), (e) => e instanceof QuiverError && e.code === 'datagram_too_large' && e.class === 'invalid')
      }
      const after = await serverStats()
      assert.ok(after.udp_echoed - before.udp_echoed >= 66, `${after.udp_echoed - before.udp_echoed} echoed`)

      // The async iterator: an echo comes through `for await`.
      const first = tunnels[0]
      let got = null
      for (let attempt = 0; attempt < 20 && got === null; attempt++) {
        first.send('iterated')
        const it = first[Symbol.asyncIterator]()
        const r = await Promise.race([it.next(), sleep(200).then(() => TIMEOUT)])
        if (r !== TIMEOUT && !r.done && r.value.toString() === 'iterated') got = r.value
      }
      assert.equal(got?.toString(), 'iterated')

      // close(): our side ends, the proxy ends its side, iteration ends.
      for (const tunnel of tunnels) await tunnel.close()
      for (const tunnel of tunnels) {
        for (const d of await drain(tunnel, 5000)) assert.ok(sent.has(d.toString()) || d.toString() === 'iterated')
        assert.equal(await tunnel.recv(), null)
        assert.equal(tunnel.ended, true)
        assert.throws(() => tunnel.send('late'), (e) => e instanceof QuiverError)
      }
      await client.close()
    })
  }

  test('destroy() resets the tunnel; a waiting recv() resolves with null', async () => {
    const client = new Client(base())
    const tunnel = await client.openUdpTunnel(proxyH3Url(), 'localhost', info.udp_echo)
    assert.equal(tunnel.httpVersion, '3.0') // http3 by default
    assert.equal(tunnel.target, `localhost:${info.udp_echo}`)
    const waiting = tunnel.recv()
    tunnel.destroy()
    assert.equal(await waiting, null)
    assert.equal(tunnel.ended, true)
    assert.throws(() => tunnel.send('x'), (e) => e instanceof QuiverError && e.code === 'datagram_error')
    await client.close()
  })

  test('protocol http1: pool_unsupported_for_transport; bad arguments: invalid', async () => {
    const client = new Client(base())
    await rejectsWith(client.openUdpTunnel(proxyUrl(), '127.0.0.1', info.udp_echo, { protocol: 'http1' }), 'pool_unsupported_for_transport', 'invalid')
    await rejectsWith(client.openUdpTunnel(proxyH3Url(), '127.0.0.1', info.udp_echo, { protocol: 'http9' }), 'invalid_config', 'invalid')
    await rejectsWith(client.openUdpTunnel(proxyH3Url(), '127.0.0.1', 0), 'invalid_url', 'invalid')
    await rejectsWith(client.openUdpTunnel(proxyH3Url(), '127.0.0.1', 70000), 'invalid_url', 'invalid')
    await rejectsWith(client.openUdpTunnel(proxyH3Url(), '127.0.0.1', 1.5), 'invalid_url', 'invalid')
    await rejectsWith(client.openUdpTunnel(proxyH3Url(), '', info.udp_echo), 'invalid_url', 'invalid')
    await rejectsWith(client.openUdpTunnel('not a url', '127.0.0.1', info.udp_echo), 'invalid_config', 'invalid')
    await client.close()
  })

  test('refusals: proxy_connect_failed', async () => {
    const client = new Client(base())
    // A target the proxy refuses to reach (not loopback): 403.
    const err = await rejectsWith(client.openUdpTunnel(proxyH3Url(), '192.0.2.1', 9), 'proxy_connect_failed', 'transient')
    assert.match(err.message, /403/)
    // Wrong credentials, over HTTP/2 and HTTP/3.
    for (const [url, protocol] of [[proxyTlsUrl, 'http2'], [proxyH3Url, 'http3']]) {
      const e = await rejectsWith(client.openUdpTunnel(url(), '127.0.0.1', info.udp_echo, { protocol, headers: { 'proxy-authorization': 'Basic d3Jvbmc6d3Jvbmc=' } }), 'proxy_connect_failed', 'transient')
      assert.match(e.message, /407/)
    }
    // Right credentials in the URL are sent (and accepted).
    const before = await serverStats()
    const tunnel = await client.openUdpTunnel(withCredentials(proxyH3Url()), '127.0.0.1', info.udp_echo)
    assert.equal((await serverStats()).proxy_auth_seen - before.proxy_auth_seen, 1)
    tunnel.destroy()
    await client.close()
  })

  for (const [protocol, url] of [['http3', proxyH3Url], ['http2', proxyTlsUrl]]) {
    test(`closeAllTunnels() (${protocol}): a waiting recv() rejects with shutdown; new tunnels connect anew`, async () => {
      const client = new Client(base())
      const tunnel = await client.openUdpTunnel(url(), '127.0.0.1', info.udp_echo, { protocol })
      const waiting = tunnel.recv()
      await sleep(100)
      const before = await serverStats()
      client.closeAllTunnels()
      await rejectsWith(waiting, 'shutdown', 'transient')
      assert.equal(await tunnel.recv(), null)
      assert.equal(tunnel.ended, true)
      assert.deepEqual(client.stats().proxies, [])
      // The client goes on: the next tunnel opens a new proxy connection.
      const again = await client.openUdpTunnel(url(), '127.0.0.1', info.udp_echo, { protocol })
      await echo(again, reader(again), Buffer.from('after closeAllTunnels'), new Set())
      assert.equal((await serverStats()).proxy_connections - before.proxy_connections, 1)
      await again.close()
      // close() closes the proxy connections too; later calls reject with shutdown.
      const last = await client.openUdpTunnel(url(), '127.0.0.1', info.udp_echo, { protocol })
      const pending = last.recv()
      await sleep(50)
      await client.close()
      await rejectsWith(pending, 'shutdown', 'transient')
      await rejectsWith(client.openUdpTunnel(url(), '127.0.0.1', info.udp_echo, { protocol }), 'shutdown', 'transient')
      assert.throws(() => client.closeAllTunnels(), (e) => e instanceof QuiverError && e.code === 'shutdown')
    })
  }
})

describe('proxy environment variables', () => {
  test('HTTPS_PROXY and http_proxy apply, NO_PROXY is honoured (a child process)', async () => {
    const script = `
      const { Client } = require(${JSON.stringify(PACKAGE)})
      const info = JSON.parse(process.env.QUIVER_TEST_INFO)
      const direct = new Client({ proxyFromEnv: false })
      const counters = async () => {
        const s = await (await direct.request('http://127.0.0.1:' + info.http + '/stats')).body.json()
        return { tunnels: s.proxy_tunnels, forwarded: s.proxy_forwarded }
      }
      const get = async (client, url) => (await client.request(url)).body.text()
      ;(async () => {
        const out = {}
        const env = new Client({ caFile: info.ca_file, protocol: 'http1' })
        out.start = await counters()
        out.localhost = await get(env, 'https://localhost:' + info.https + '/health')
        out.afterLocalhost = await counters()
        out.ip = await get(env, 'https://127.0.0.1:' + info.https + '/health')
        out.afterIp = await counters()
        out.http = await get(env, 'http://127.0.0.1:' + info.http + '/health')
        out.afterHttp = await counters()
        for (const [name, options] of [['fromEnvFalse', { proxyFromEnv: false }], ['none', { proxy: 'none' }]]) {
          const client = new Client({ caFile: info.ca_file, ...options })
          out[name] = await get(client, 'https://127.0.0.1:' + info.https + '/health')
          out[name + 'After'] = await counters()
        }
        process.stdout.write(JSON.stringify(out))
        // No close(): the process exits on its own.
      })().catch((e) => { console.error(e); process.exit(1) })
    `
    const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !/_proxy$/i.test(k)))
    Object.assign(env, {
      QUIVER_TEST_INFO: JSON.stringify(info),
      HTTPS_PROXY: proxyUrl(),
      http_proxy: proxyUrl(),
      NO_PROXY: 'localhost, .example.invalid',
    })
    const { code, out } = await new Promise((resolve, reject) => {
      const child = spawn(process.execPath, ['-e', script], { env, stdio: ['ignore', 'pipe', 'inherit'] })
      let out = ''
      child.stdout.on('data', (d) => {
        out += d
      })
      const killer = setTimeout(() => child.kill('SIGKILL'), 30000)
      child.once('error', reject)
      child.once('exit', (code, signal) => {
        clearTimeout(killer)
        resolve({ code: code ?? signal, out })
      })
    })
    assert.equal(code, 0, out)
    const r = JSON.parse(out)
    assert.equal(r.localhost, 'ok')
    assert.deepEqual(r.afterLocalhost, r.start, 'localhost is in NO_PROXY: direct')
    assert.equal(r.ip, 'ok')
    assert.equal(r.afterIp.tunnels, r.start.tunnels + 1, '127.0.0.1 is not: tunnelled through HTTPS_PROXY')
    assert.equal(r.http, 'ok')
    assert.equal(r.afterHttp.forwarded, r.start.forwarded + 1, 'http: forwarded through http_proxy')
    assert.equal(r.fromEnvFalse, 'ok')
    assert.deepEqual(r.fromEnvFalseAfter, r.afterHttp, 'proxyFromEnv: false ignores the environment')
    assert.equal(r.none, 'ok')
    assert.deepEqual(r.noneAfter, r.afterHttp, "proxy: 'none' ignores the environment")
  })
})
