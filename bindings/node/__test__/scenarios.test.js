'use strict'
// The cross-language behaviour cases (tests/server/scenarios.tsv) from Node: each case on each
// protocol it names.

const { test, before, after } = require('node:test')
const assert = require('node:assert/strict')
const fs = require('node:fs')
const path = require('node:path')

const { Client, QuiverError } = require('..')
const { ROOT, startServer, pattern } = require('./helpers')

const NAMES = ['http1', 'https1', 'h2', 'h2c', 'h3']

function unescape(s) {
  return s.replace(/\\(.)/g, (_, c) => ({ r: '\r', n: '\n', t: '\t' })[c] ?? c)
}

function cases() {
  const text = fs.readFileSync(path.join(ROOT, 'tests/server/scenarios.tsv'), 'utf8')
  return text.split('\n').filter((l) => l.trim() !== '' && !l.startsWith('#')).map((line) => {
    const c = line.split('\t')
    assert.equal(c.length, 9, line)
    const cell = c.map((v) => (v === '-' ? null : v))
    return {
      name: c[0],
      protocols: c[1] === '*' ? NAMES : c[1].split(','),
      method: c[2],
      target: c[3],
      headers: cell[4] === null ? [] : cell[4].split('|').map((pair) => {
        const i = pair.indexOf('=')
        return [pair.slice(0, i), unescape(pair.slice(i + 1))]
      }),
      body: cell[5] === null ? undefined : unescape(cell[5]),
      timeout: cell[6] === null ? undefined : Number(cell[6]),
      expect: c[7].split('='),
      checks: cell[8] === null ? [] : cell[8].split('|').map((x) => {
        const i = x.indexOf('=')
        return [x.slice(0, i), x.slice(i + 1)]
      }),
    }
  })
}

let info
before(async () => { info = await startServer() })
after(async () => { await info.stop() })

function target(name) {
  switch (name) {
    case 'http1': return { base: `http://127.0.0.1:${info.http}`, options: {} }
    case 'https1': return { base: `https://localhost:${info.https}`, options: { caFile: info.ca_file, protocol: 'http1' } }
    case 'h2': return { base: `https://localhost:${info.https}`, options: { caFile: info.ca_file } }
    case 'h2c': return { base: `http://127.0.0.1:${info.h2c}`, options: { protocol: 'http2' } }
    case 'h3': return { base: `https://localhost:${info.h3}`, options: { caFile: info.ca_file, protocol: 'http3' } }
  }
  throw new Error(name)
}

for (const name of NAMES) {
  test(`every case on ${name}`, async () => {
    const { base, options } = target(name)
    const client = new Client({ proxyFromEnv: false, ...options })
    try {
      for (const c of cases().filter((c) => c.protocols.includes(name))) {
        const url = c.target.startsWith('/') ? base + c.target : c.target
        let res = null
        let body = null
        let error = null
        try {
          res = await client.request(url, { method: c.method, headers: c.headers, body: c.body, timeout: c.timeout })
          body = Buffer.from(await res.body.arrayBuffer())
        } catch (e) {
          error = e
        }
        const [what, value] = c.expect
        if (what === 'error') {
          assert.ok(error instanceof QuiverError, `${c.name}: expected ${value}, got ${error ?? res.statusCode}`)
          assert.equal(error.code, value, `${c.name}: ${error.message}`)
          continue
        }
        assert.equal(error, null, `${c.name}: ${error}`)
        assert.equal(res.statusCode, Number(value), c.name)
        for (const [kind, arg] of c.checks) {
          if (kind === 'pattern') assert.ok(body.equals(pattern(0, Number(arg))), c.name)
          else if (kind === 'text') assert.equal(body.toString(), unescape(arg), c.name)
          else if (kind === 'len') assert.equal(body.length, Number(arg), c.name)
          else if (kind === 'contains') assert.ok(body.toString().includes(unescape(arg)), c.name)
          else if (kind === 'history') {
            assert.equal(res.history.length, Number(arg), `${c.name}: ${res.history.map((h) => h.url).join(' -> ')}`)
            assert.equal(res.redirected, res.history.length > 0, c.name)
          } else if (kind === 'url_ends') assert.ok(res.url.endsWith(unescape(arg)), `${c.name}: ${res.url}`)
          else if (kind === 'header') {
            const i = arg.indexOf(':')
            assert.equal(res.headers[arg.slice(0, i)], arg.slice(i + 1), c.name)
          } else throw new Error(`unknown check ${kind}`)
        }
      }
    } finally {
      await client.close()
    }
  })
}
