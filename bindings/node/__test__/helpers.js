'use strict'
// Shared by the tests: the loopback test server (target/debug/quiver-testserver, or
// QUIVER_TESTSERVER) and the protocols every suite runs over.

const { spawn } = require('node:child_process')
const net = require('node:net')
const path = require('node:path')
const readline = require('node:readline')

const ROOT = path.resolve(__dirname, '../../..')
const SERVER = process.env.QUIVER_TESTSERVER ?? path.join(ROOT, 'target/debug/quiver-testserver')

/** Starts the test server; resolves with its JSON line plus `stop()`. */
async function startServer(args = []) {
  const child = spawn(SERVER, args, { stdio: ['pipe', 'pipe', 'inherit'] })
  const exited = new Promise((resolve) => child.once('exit', resolve))
  const line = await new Promise((resolve, reject) => {
    child.once('error', reject)
    child.once('exit', (code) => reject(new Error(`quiver-testserver exited (${code}) before its JSON line`)))
    readline.createInterface({ input: child.stdout }).once('line', resolve)
  })
  const info = JSON.parse(line)
  info.stop = async () => {
    child.stdin.end() // the server exits when its stdin closes
    await exited
  }
  return info
}

/** The protocols core speaks, each with the URL maker and client options for the server. */
function protocols(info) {
  return [
    { name: 'HTTP/1.1', version: '1.1', url: (p) => `http://127.0.0.1:${info.http}${p}`, options: {} },
    {
      name: 'HTTP/1.1 over TLS',
      version: '1.1',
      url: (p) => `https://localhost:${info.https}${p}`,
      options: { caFile: info.ca_file, protocol: 'http1' },
    },
    {
      name: 'HTTP/2 (https, ALPN)',
      version: '2.0',
      url: (p) => `https://localhost:${info.https}${p}`,
      options: { caFile: info.ca_file },
    },
    { name: 'HTTP/2 (h2c)', version: '2.0', url: (p) => `http://127.0.0.1:${info.h2c}${p}`, options: { protocol: 'http2' } },
    {
      name: 'HTTP/3',
      version: '3.0',
      url: (p) => `https://localhost:${info.h3}${p}`,
      options: { caFile: info.ca_file, protocol: 'http3' },
    },
  ]
}

/** The test server's body pattern: byte i is 'a' + i % 26. */
function pattern(offset, length) {
  const out = Buffer.allocUnsafe(length)
  for (let i = 0; i < length; i++) out[i] = 97 + ((offset + i) % 26)
  return out
}

/** Checks that `chunk` continues the pattern at `offset`; returns the new offset. */
function checkPattern(chunk, offset) {
  for (let i = 0; i < chunk.length; i++) {
    if (chunk[i] !== 97 + ((offset + i) % 26)) throw new Error(`pattern broken at byte ${offset + i}`)
  }
  return offset + chunk.length
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms))

/** A TCP port on 127.0.0.1 that nothing listens on (bound, then closed). */
async function closedPort() {
  const server = net.createServer()
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve))
  const { port } = server.address()
  await new Promise((resolve) => server.close(resolve))
  return port
}

module.exports = { ROOT, startServer, protocols, pattern, checkPattern, sleep, closedPort }
