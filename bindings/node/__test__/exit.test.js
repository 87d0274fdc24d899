'use strict'
// Nothing keeps the event loop alive after the user is done: a script that closes its
// client (or just stops using it) exits at once.

const assert = require('node:assert/strict')
const { spawn } = require('node:child_process')
const path = require('node:path')
const { before, after, test } = require('node:test')

const { startServer } = require('./helpers.js')

const PACKAGE = path.resolve(__dirname, '..')

let info
before(async () => {
  info = await startServer()
})
after(async () => {
  await info.stop()
})

/**
 * Runs `body` (an async function body with `Client`, `info` and `mark()` in scope) in a child
 * Node process; resolves with the milliseconds from its `mark()` to its exit.
 */
function runScript(body) {
  const script = `
    const { Client } = require(${JSON.stringify(PACKAGE)})
    const info = JSON.parse(process.env.QUIVER_TEST_INFO)
    const mark = () => process.stdout.write('mark ' + Date.now() + '\\n')
    ;(async () => { ${body} })().catch((e) => { console.error(e); process.exit(1) })
  `
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['-e', script], {
      env: { ...process.env, QUIVER_TEST_INFO: JSON.stringify(info) },
      stdio: ['ignore', 'pipe', 'inherit'],
    })
    let out = ''
    child.stdout.on('data', (d) => {
      out += d
    })
    const killer = setTimeout(() => child.kill('SIGKILL'), 20000)
    child.once('error', reject)
    child.once('exit', (code, signal) => {
      const exited = Date.now()
      clearTimeout(killer)
      const m = /mark (\d+)/.exec(out)
      if (code !== 0 || m === null) {
        reject(new Error(`child exited with ${code ?? signal}; stdout: ${out}`))
        return
      }
      resolve(exited - Number(m[1]))
    })
  })
}

test('a script that makes requests and closes its client exits within a second', async (t) => {
  const ms = await runScript(`
    const plain = new Client({ pools: { ['http://127.0.0.1:' + info.h2c]: { protocol: 'http2' } } })
    const tls = new Client({ caFile: info.ca_file })
    const h3 = new Client({ caFile: info.ca_file, protocol: 'http3' })
    const urls = [
      [plain, 'http://127.0.0.1:' + info.http + '/bytes/100000'],
      [plain, 'http://127.0.0.1:' + info.h2c + '/health'],
      [tls, 'https://localhost:' + info.https + '/health'],
      [h3, 'https://localhost:' + info.h3 + '/health'],
    ]
    for (const [client, url] of urls) {
      const res = await client.request(url)
      if (res.statusCode !== 200) throw new Error('status ' + res.statusCode)
      await res.body.arrayBuffer()
    }
    const ch = await h3.openDatagramChannel('https://localhost:' + info.h3 + '/datagram-echo')
    ch.send('x')
    await ch.close()
    const proxied = new Client({ caFile: info.ca_file, proxyFromEnv: false, proxy: 'https://localhost:' + info.proxy_tls, proxyProtocol: 'http2' })
    await (await proxied.request('https://localhost:' + info.https + '/health')).body.text()
    const tunnel = await proxied.openUdpTunnel('https://localhost:' + info.proxy_h3, '127.0.0.1', info.udp_echo)
    tunnel.send('x')
    await tunnel.close()
    await Promise.all([plain.close(), tls.close(), h3.close(), proxied.close()])
    mark()
  `)
  t.diagnostic(`exited ${ms} ms after close()`)
  assert.ok(ms < 1000, `exited ${ms} ms after close()`)
})

test('an idle client that is never closed does not keep the process alive', async (t) => {
  const ms = await runScript(`
    const client = new Client({ caFile: info.ca_file })
    const res = await client.request('https://localhost:' + info.https + '/health')
    await res.body.text()
    const streamed = await client.request('http://127.0.0.1:' + info.http + '/echo', {
      method: 'POST',
      body: (async function* () { yield 'a'; yield 'b' })(),
    })
    await streamed.body.text()
    mark()
  `)
  t.diagnostic(`exited ${ms} ms after the last request`)
  assert.ok(ms < 1000, `exited ${ms} ms after the last request`)
})

test('open UDP tunnels and proxy connections nobody waits on do not keep the process alive', async (t) => {
  const ms = await runScript(`
    const client = new Client({ caFile: info.ca_file, proxyFromEnv: false, proxy: 'https://localhost:' + info.proxy_tls, proxyProtocol: 'http2' })
    await (await client.request('https://localhost:' + info.https + '/health')).body.text()
    const tunnels = []
    for (const [url, protocol] of [[info.proxy_h3, 'http3'], [info.proxy_tls, 'http2']]) {
      const tunnel = await client.openUdpTunnel('https://localhost:' + url, '127.0.0.1', info.udp_echo, { protocol })
      const echo = tunnel.recv()
      for (let i = 0; i < 20; i++) {
        tunnel.send('ping')
        let timer
        const r = await Promise.race([echo, new Promise((r) => { timer = setTimeout(r, 200, 'timeout') })])
        clearTimeout(timer)
        if (r !== 'timeout') break
      }
      tunnels.push(tunnel)
    }
    globalThis.keep = tunnels // open, referenced, not waited on
    mark()
  `)
  t.diagnostic(`exited ${ms} ms after the last use`)
  assert.ok(ms < 1000, `exited ${ms} ms after the last use`)
})

test('a response body left unread does not keep the process alive', async () => {
  const ms = await runScript(`
    const client = new Client()
    const res = await client.request('http://127.0.0.1:' + info.http + '/bytes/50000000')
    mark()
  `)
  assert.ok(ms < 1000, `exited ${ms} ms after the request`)
})

test('a pending request keeps the process alive until it completes', async () => {
  const ms = await runScript(`
    const client = new Client()
    mark()
    client.request('http://127.0.0.1:' + info.http + '/slow/500').then(async (res) => {
      process.stdout.write('status ' + res.statusCode + ' ' + await res.body.text() + '\\n')
    })
  `)
  assert.ok(ms >= 450, `exited after ${ms} ms, before the response`)
})
