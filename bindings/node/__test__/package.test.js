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
  for (const name of ['Client', 'CookieJar', 'QuiverError', 'ResponseBody', 'DatagramChannel', 'UdpTunnel', 'request', 'errorKinds', 'version', 'native']) {
    assert.ok(cjs[name] !== undefined, name)
    assert.equal(esm[name], cjs[name], name)
  }
  assert.equal(esm.default, cjs)
  assert.match(cjs.version, /^\d+\.\d+\.\d+/)
  assert.equal(cjs.version, require('../package.json').version)
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
