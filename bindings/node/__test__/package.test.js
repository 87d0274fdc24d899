'use strict'
// The package as users load it: the CommonJS and ESM entries, and the generated index.d.ts
// (type-checked with TypeScript against __test__/types.check.ts).

const assert = require('node:assert/strict')
const { spawnSync } = require('node:child_process')
const path = require('node:path')
const { test } = require('node:test')

const PACKAGE = path.resolve(__dirname, '..')

test('the CommonJS and ESM entries export the same API', async () => {
  const cjs = require('quiver-http')
  const esm = await import('quiver-http')
  for (const name of ['Agent', 'Client', 'CookieJar', 'Progress', 'QuiverError', 'ResponseBody', 'DatagramChannel', 'UdpTunnel', 'fetch', 'request', 'errorKinds', 'version', 'native']) {
    assert.ok(cjs[name] !== undefined, name)
    assert.equal(esm[name], cjs[name], name)
  }
  assert.equal(esm.default, cjs)
  assert.match(cjs.version, /^\d+\.\d+\.\d+/)
  assert.equal(cjs.version, require('../package.json').version)
})

test('undici is optional: the package and its Agent work without it', () => {
  // A child process in which `undici` cannot be found: loading, the Agent under Node's global
  // fetch (set by its symbol) and quiver.fetch need no undici; only the Agent's Dispatcher API
  // methods (request(), ...) do, and say so.
  const script = `
    const Module = require('node:module')
    const resolve = Module._resolveFilename
    Module._resolveFilename = function (request, ...rest) {
      if (request === 'undici' || request.startsWith('undici/')) throw Object.assign(new Error('no undici here'), { code: 'MODULE_NOT_FOUND' })
      return resolve.call(this, request, ...rest)
    }
    const quiver = require(${JSON.stringify(PACKAGE)})
    const agent = new quiver.Agent()
    let message = ''
    try { agent.request({ origin: 'http://127.0.0.1:9', path: '/', method: 'GET' }) } catch (e) { message = e.message }
    globalThis[Symbol.for('undici.globalDispatcher.1')] = agent
    const server = require('node:net').createServer().listen(0, '127.0.0.1', async () => {
      const { port } = server.address()
      server.close()
      const causes = []
      for (const f of [fetch, quiver.fetch]) {
        try { await f('http://127.0.0.1:' + port + '/') } catch (e) { causes.push(e.name + ':' + e.cause?.code) }
      }
      await agent.close()
      console.log(JSON.stringify({ message, causes }))
    })
  `
  const r = spawnSync(process.execPath, ['-e', script], { encoding: 'utf8', timeout: 60000 })
  assert.equal(r.status, 0, r.stderr)
  const { message, causes } = JSON.parse(r.stdout)
  assert.match(message, /install the `undici` package/)
  assert.deepEqual(causes, ['TypeError:connect_refused', 'TypeError:connect_refused'])
})

test('QuiverError is an Error with a code and a class', () => {
  const { QuiverError } = require('quiver-http')
  const e = new QuiverError('dns', 'transient', 'no such host', { cause: 'x' })
  assert.ok(e instanceof Error)
  assert.equal(e.name, 'QuiverError')
  assert.equal(e.code, 'dns')
  assert.equal(e.class, 'transient')
  assert.equal(e.cause, 'x')
  assert.match(String(e.stack), /^QuiverError: no such host/)
})

test('index.d.ts type-checks a program using the API', (t) => {
  let tsc
  try {
    tsc = require.resolve('typescript/bin/tsc', { paths: [PACKAGE] })
    require.resolve('@types/node/package.json', { paths: [PACKAGE] })
  } catch {
    t.skip('typescript and @types/node are not installed (npm install --include=dev)')
    return
  }
  const r = spawnSync(process.execPath, [tsc, '--noEmit', '--strict', '--target', 'es2022', '--module', 'nodenext',
    '--moduleResolution', 'nodenext', '--types', 'node', path.join(__dirname, 'types.check.ts')], { cwd: PACKAGE, encoding: 'utf8' })
  assert.equal(r.status, 0, r.stdout + r.stderr)
})
