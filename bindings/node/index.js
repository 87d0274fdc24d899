'use strict'
// quiver-http: the JavaScript face of the native addon (src/, loaded by the generated
// binding.js). Conversion and idiom only: options, headers and bodies in; responses, bodies
// (async iterables, Readable, ReadableStream) and QuiverError out. Types: index.d.ts.

const { Readable } = require('node:stream')
const binding = require('./binding.js')
const diagnostics = require('./diagnostics.js')

const { native } = binding

const ERROR_PREFIX = /^\[quiver:([a-z0-9_]+):([a-z]+)\] ([\s\S]*)$/

/** Every failure: `code` is the error kind, `class` what to do about it. */
class QuiverError extends Error {
  constructor(code, errorClass, message, options) {
    super(message, options)
    this.code = code
    this.class = errorClass
  }

  get name() {
    return 'QuiverError'
  }
}

const errorKinds = Object.freeze(native.errorKinds().map((pair) => Object.freeze(pair)))
const classOf = new Map(errorKinds)

function quiverError(code, message, options) {
  return new QuiverError(code, classOf.get(code) ?? 'unrecoverable', message, options)
}

/** The native layer's errors (prefixed messages) as QuiverErrors; anything else unchanged. */
function convert(e, cause) {
  if (e instanceof QuiverError) return e
  const m = e !== null && typeof e === 'object' && typeof e.message === 'string' ? ERROR_PREFIX.exec(e.message) : null
  if (m === null) return e
  return new QuiverError(m[1], m[2], m[3], cause === undefined ? undefined : { cause })
}

function callNative(fn) {
  try {
    return fn()
  } catch (e) {
    throw convert(e)
  }
}

// ---- options --------------------------------------------------------------------------------

// Standard methods are upper-cased (as fetch() does, and PATCH too); other tokens go as given.
const NORMALISED_METHODS = new Set(['DELETE', 'GET', 'HEAD', 'OPTIONS', 'POST', 'PUT', 'PATCH'])

function normaliseMethod(method) {
  if (typeof method !== 'string') throw quiverError('invalid_method', `the method must be a string, got ${typeof method}`)
  const upper = method.toUpperCase()
  return NORMALISED_METHODS.has(upper) ? upper : method
}

const snakeCase = (name) => name.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`)

function pushOptions(out, pattern, options, where) {
  if (options === null || typeof options !== 'object' || Array.isArray(options)) {
    throw quiverError('invalid_config', `${where} must be an object of options`)
  }
  for (let [key, value] of Object.entries(options)) {
    if (value === undefined || (pattern === null && key === 'pools')) continue
    if (value instanceof URL) value = value.href // `proxy: new URL(...)`
    const t = typeof value
    if (value !== null && t !== 'boolean' && t !== 'number' && t !== 'string') {
      throw quiverError('invalid_config', `${where}: option \`${key}\` expects a boolean, number, string or null, got ${t}`)
    }
    out.push(pattern === null ? { name: snakeCase(key), value } : { pattern, name: snakeCase(key), value })
  }
}

function optionEntries(options) {
  const out = []
  if (options === undefined || options === null) return out
  pushOptions(out, null, options, 'client options')
  if (options.pools !== undefined && options.pools !== null) {
    if (typeof options.pools !== 'object') throw quiverError('invalid_config', '`pools` must be an object keyed by origin pattern')
    for (const [pattern, rule] of Object.entries(options.pools)) {
      pushOptions(out, pattern, rule, `pool rule \`${pattern}\``)
    }
  }
  return out
}

// ---- headers --------------------------------------------------------------------------------

function flattenHeaders(headers) {
  const out = []
  if (headers === undefined || headers === null) return out
  if (Array.isArray(headers)) {
    if (headers.length > 0 && !Array.isArray(headers[0])) {
      // undici's flat form: [name, value, name, value, ...]
      if (headers.length % 2 !== 0) throw quiverError('invalid_header', 'a flat header array needs an even length')
      for (let i = 0; i < headers.length; i += 2) out.push(String(headers[i]), String(headers[i + 1]))
      return out
    }
    for (const pair of headers) out.push(String(pair[0]), String(pair[1]))
    return out
  }
  if (typeof headers === 'string') throw quiverError('invalid_header', 'headers must be an object, an array or an iterable of pairs')
  if (typeof headers[Symbol.iterator] === 'function') {
    for (const [name, value] of headers) out.push(String(name), String(value))
    return out
  }
  if (typeof headers !== 'object') throw quiverError('invalid_header', 'headers must be an object, an array or an iterable of pairs')
  for (const name of Object.keys(headers)) {
    const value = headers[name]
    if (value === undefined) continue
    if (Array.isArray(value)) {
      for (const v of value) out.push(name, String(v))
    } else {
      out.push(name, String(value))
    }
  }
  return out
}

/** Whether a flat header list has `name` (lower-case), in any case. */
function hasHeader(flat, name) {
  for (let i = 0; i < flat.length; i += 2) if (flat[i].toLowerCase() === name) return true
  return false
}

function headersObject(flat) {
  const out = {}
  for (let i = 0; i < flat.length; i += 2) {
    const name = flat[i]
    const value = flat[i + 1]
    const prev = Object.prototype.hasOwnProperty.call(out, name) ? out[name] : undefined
    const next = prev === undefined ? value : Array.isArray(prev) ? (prev.push(value), prev) : [prev, value]
    if (name === '__proto__') {
      Object.defineProperty(out, name, { value: next, enumerable: true, writable: true, configurable: true })
    } else {
      out[name] = next
    }
  }
  return out
}

// ---- request bodies -------------------------------------------------------------------------

function toBuffer(chunk) {
  if (typeof chunk === 'string') return Buffer.from(chunk, 'utf8')
  if (Buffer.isBuffer(chunk)) return chunk
  if (ArrayBuffer.isView(chunk)) return Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength)
  if (chunk instanceof ArrayBuffer || (typeof SharedArrayBuffer !== 'undefined' && chunk instanceof SharedArrayBuffer)) {
    return Buffer.from(chunk)
  }
  throw new TypeError(`a body chunk must be a string, Buffer, Uint8Array or ArrayBuffer, got ${chunk === null ? 'null' : typeof chunk}`)
}

function closeIterator(it) {
  try {
    const r = typeof it.return === 'function' ? it.return() : undefined
    if (r !== undefined && r !== null && typeof r.then === 'function') r.then(undefined, () => {})
  } catch {
    // The source is being abandoned; its own errors no longer matter.
  }
}

/**
 * A streamed body: the native side calls `pull(true)` each time core can send more (at most
 * one call outstanding) and `pull(false)` when it no longer needs the source.
 */
function streamedBody(iterable) {
  const state = { error: undefined }
  const it = typeof iterable[Symbol.asyncIterator] === 'function' ? iterable[Symbol.asyncIterator]() : iterable[Symbol.iterator]()
  let source = null
  let finished = false
  const fail = (e) => {
    if (finished) return
    finished = true
    state.error = e
    source.fail(e instanceof Error ? e.message : String(e))
    closeIterator(it)
  }
  const pull = (more) => {
    if (finished) return
    if (!more) {
      finished = true
      closeIterator(it)
      return
    }
    let step
    try {
      step = it.next()
    } catch (e) {
      fail(e)
      return
    }
    Promise.resolve(step).then((r) => {
      if (finished) return
      if (r.done) {
        finished = true
        source.end()
        return
      }
      let chunk
      try {
        chunk = toBuffer(r.value)
      } catch (e) {
        fail(e)
        return
      }
      source.push(chunk)
    }, fail)
  }
  source = new native.UploadSource(pull)
  return { bytes: null, upload: source, form: null, states: [state], state }
}

/** A `FormData` as a native multipart form: strings as text fields, Blobs (and Files) streamed. */
function formBody(formData) {
  const form = new native.NativeForm()
  const states = []
  for (const [name, value] of formData) {
    if (typeof value === 'string') {
      callNative(() => form.text(name, value))
      continue
    }
    // A File has a name (FormData makes every Blob a File, named `blob` unless given one);
    // an empty type is sent as application/octet-stream, as browsers and undici do.
    const streamed = streamedBody(value.stream())
    states.push(streamed.state)
    const filename = typeof value.name === 'string' ? value.name : 'blob'
    callNative(() => form.stream(name, streamed.upload, value.size, filename, value.type || 'application/octet-stream'))
  }
  return { bytes: null, upload: null, form, states }
}

// By shape, as undici tells them: a FormData or Blob of another realm or of npm undici (whose
// classes are not Node's globals) is still one.
function isFormDataLike(body) {
  return body !== null && typeof body === 'object' && body[Symbol.toStringTag] === 'FormData' &&
    typeof body.append === 'function' && typeof body.getAll === 'function' && typeof body[Symbol.iterator] === 'function'
}

function isBlobLike(body) {
  return (typeof Blob !== 'undefined' && body instanceof Blob) ||
    (body !== null && typeof body === 'object' && typeof body.stream === 'function' &&
      typeof body.arrayBuffer === 'function' && /^(Blob|File)$/.test(body[Symbol.toStringTag]))
}

function prepareBody(body) {
  if (body === undefined || body === null) return { bytes: null, upload: null, form: null, states: [] }
  if (typeof body === 'string' || Buffer.isBuffer(body) || ArrayBuffer.isView(body) ||
      body instanceof ArrayBuffer || (typeof SharedArrayBuffer !== 'undefined' && body instanceof SharedArrayBuffer)) {
    return { bytes: toBuffer(body), upload: null, form: null, states: [] }
  }
  if (body instanceof URLSearchParams) return { bytes: Buffer.from(body.toString(), 'utf8'), upload: null, form: null, states: [] }
  if (isFormDataLike(body)) return formBody(body)
  if (isBlobLike(body)) {
    // Streamed, with its size as content-length and its type as content-type (as fetch does).
    const streamed = streamedBody(body.stream())
    streamed.length = body.size
    streamed.contentType = body.type || null
    return streamed
  }
  if (typeof body[Symbol.asyncIterator] === 'function' || typeof body[Symbol.iterator] === 'function') {
    return streamedBody(body)
  }
  throw quiverError('invalid_body', `unsupported request body type: ${typeof body}`)
}

// ---- per-request options --------------------------------------------------------------------

const REDIRECT_MODES = new Set(['follow', 'manual', 'error'])

function typeName(value) {
  return value === null ? 'null' : Array.isArray(value) ? 'array' : typeof value
}

function expect(ok, message) {
  if (!ok) throw quiverError('invalid_config', message)
}

/** `auth` as the native layer takes it: `undefined` keeps the client's, `null` sends none. */
function authSpec(auth) {
  if (auth === undefined) return undefined
  if (auth === null) return { scheme: 'none' }
  expect(typeof auth === 'object' && !Array.isArray(auth),
    `\`auth\` must be { basic: [user, password] }, { bearer: token }, { digest: [user, password] } or null, got ${typeName(auth)}`)
  const schemes = Object.keys(auth).filter((k) => auth[k] !== undefined)
  expect(schemes.length === 1 && ['basic', 'bearer', 'digest'].includes(schemes[0]),
    `\`auth\` must have exactly one of basic, bearer or digest, got ${schemes.length === 0 ? 'none' : schemes.join(', ')}`)
  const scheme = schemes[0]
  const value = auth[scheme]
  if (scheme === 'bearer') {
    expect(typeof value === 'string', `\`auth.bearer\` must be a string token, got ${typeName(value)}`)
    return { scheme, secret: value }
  }
  expect(Array.isArray(value) && value.length === 2 && value.every((v) => typeof v === 'string'),
    `\`auth.${scheme}\` must be [user, password] (two strings)`)
  return { scheme, user: value[0], secret: value[1] }
}

/** Per-request cookies (`{ name: value }`, a Map or [name, value] pairs) as a flat list. */
function cookieList(cookies) {
  expect(cookies !== null && typeof cookies === 'object',
    `\`cookies\` must be an object of name: value, got ${typeName(cookies)}`)
  const out = []
  const entries = typeof cookies[Symbol.iterator] === 'function' ? cookies : Object.entries(cookies)
  for (const [name, value] of entries) {
    if (value !== undefined) out.push(String(name), String(value))
  }
  return out
}

/** The native settings of a request; every check before anything is sent or streamed. */
function requestSettings(options) {
  const {
    timeout, readTimeout, checkoutTimeout, earlyData, redirect, maxRedirections, maxRedirects, decompress, auth,
    protocol, cookies,
  } = options
  const settings = {}
  if (timeout !== undefined && timeout !== null) {
    expect(typeof timeout === 'number', `\`timeout\` must be a number of milliseconds, got ${typeName(timeout)}`)
    settings.timeoutMs = timeout
  }
  // Core takes them greater than 0 and at most a year (`invalid_config` otherwise).
  if (readTimeout !== undefined && readTimeout !== null) {
    expect(typeof readTimeout === 'number', `\`readTimeout\` must be a number of milliseconds, got ${typeName(readTimeout)}`)
    settings.readTimeoutMs = readTimeout
  }
  if (checkoutTimeout !== undefined && checkoutTimeout !== null) {
    expect(typeof checkoutTimeout === 'number',
      `\`checkoutTimeout\` must be a number of milliseconds, got ${typeName(checkoutTimeout)}`)
    settings.checkoutTimeoutMs = checkoutTimeout
  }
  if (earlyData !== undefined && earlyData !== null) {
    expect(typeof earlyData === 'boolean', `\`earlyData\` must be a boolean, got ${typeName(earlyData)}`)
    settings.earlyData = earlyData
  }
  if (redirect !== undefined) {
    expect(REDIRECT_MODES.has(redirect), `\`redirect\` must be 'follow', 'manual' or 'error', got ${JSON.stringify(redirect) ?? typeName(redirect)}`)
    settings.redirect = redirect
  }
  const max = maxRedirections ?? maxRedirects
  if (max !== undefined && max !== null) {
    expect(maxRedirections === undefined || maxRedirects === undefined || maxRedirections === maxRedirects,
      `\`maxRedirections\` (${maxRedirections}) and \`maxRedirects\` (${maxRedirects}) disagree: give one`)
    expect(typeof max === 'number', `\`maxRedirections\` must be a number, got ${typeName(max)}`)
    settings.maxRedirects = max
  }
  if (decompress !== undefined) {
    expect(typeof decompress === 'boolean', `\`decompress\` must be a boolean, got ${typeName(decompress)}`)
    settings.decompress = decompress
  }
  const spec = authSpec(auth)
  if (spec !== undefined) settings.auth = spec
  if (protocol !== undefined && protocol !== null) {
    expect(typeof protocol === 'string', `\`protocol\` must be 'auto', 'http1', 'http2' or 'http3', got ${typeName(protocol)}`)
    settings.protocol = protocol
  }
  if (cookies !== undefined && cookies !== null) settings.cookies = cookieList(cookies)
  // None set (the common case): nothing for the native side to read field by field.
  for (const _ in settings) return settings
  return null
}

// ---- progress and timings -------------------------------------------------------------------

let nativeProgressOf

/** How far one request's upload and download are; see index.d.ts. */
class Progress {
  #native = new native.NativeProgress()

  static {
    nativeProgressOf = (p) => p.#native
  }

  get uploaded() {
    return this.#native.uploaded
  }

  get uploadTotal() {
    return this.#native.uploadTotal ?? null
  }

  get downloaded() {
    return this.#native.downloaded
  }

  get downloadTotal() {
    return this.#native.downloadTotal ?? null
  }

  toJSON() {
    return { uploaded: this.uploaded, uploadTotal: this.uploadTotal, downloaded: this.downloaded, downloadTotal: this.downloadTotal }
  }
}

/** The native side of a request's `progress` option (`null` without one). */
function progressOption(progress) {
  if (progress === undefined || progress === null) return null
  if (!(progress instanceof Progress)) {
    throw quiverError('invalid_config', `\`progress\` must be a quiver.Progress, got ${typeName(progress)}`)
  }
  return nativeProgressOf(progress)
}

/**
 * A response's timings (ms) from its native timings: fixed once the head arrived, except
 * `total` (read live: `null` until the body ended).
 */
function timingsOf(t) {
  const s = t.snapshot()
  return {
    queued: s.queued,
    dns: s.dns ?? null,
    connect: s.connect ?? null,
    tls: s.tls ?? null,
    ttfb: s.ttfb,
    redirects: s.redirects,
    get total() {
      return t.total ?? null
    },
    connectionId: s.connectionId,
    reused: s.reused,
    protocol: s.protocol,
    stream: s.stream ?? null,
    alpn: s.alpn ?? null,
    resumed: s.resumed,
    remote: diagnostics.addressInfo(s.remoteAddress, s.remotePort),
  }
}

const { Observer } = diagnostics({ QuiverError, quiverError, timingsOf })

// ---- responses ------------------------------------------------------------------------------

/** A response body; see index.d.ts. */
class ResponseBody {
  #res
  #used = false
  #done = false
  #trailers
  #release
  #signal

  /** @internal */
  constructor(res, trailers, release, signal) {
    this.#res = res
    this.#trailers = trailers
    this.#release = release
    this.#signal = signal
  }

  get bodyUsed() {
    return this.#used
  }

  #claim() {
    if (this.#used) throw new TypeError('Body is unusable: it has already been read')
    this.#used = true
  }

  /** The body is done with: `release(clean, error, trailers)` (see `Client#send`). */
  #finish(clean, error = null) {
    if (this.#done) return
    this.#done = true
    let t = null
    if (clean) {
      t = this.#res.trailers()
      if (t !== null) Object.assign(this.#trailers, headersObject(t))
    }
    if (this.#release !== null) this.#release(clean, error, t)
  }

  #error(e) {
    const err = convert(e, this.#signal?.aborted ? this.#signal.reason : undefined)
    this.#finish(false, err)
    return err
  }

  /** The next batch of bytes, or null at the end. */
  async #next() {
    for (;;) {
      let chunk
      try {
        chunk = this.#res.tryRead()
      } catch (e) {
        throw this.#error(e)
      }
      if (chunk !== null) return chunk
      if (this.#res.ended) {
        this.#finish(true)
        return null
      }
      try {
        await this.#res.wait()
      } catch (e) {
        throw this.#error(e)
      }
    }
  }

  async * #iterate() {
    let complete = false
    try {
      for (;;) {
        const chunk = await this.#next()
        if (chunk === null) {
          complete = true
          return
        }
        yield chunk
      }
    } finally {
      if (!complete && !this.#done) this.cancel()
    }
  }

  [Symbol.asyncIterator]() {
    this.#claim()
    return this.#iterate()
  }

  async #all() {
    this.#claim()
    try {
      let buf = this.#res.takeAll()
      if (buf === null) buf = await this.#res.readAll()
      this.#finish(true)
      return buf
    } catch (e) {
      throw this.#error(e)
    }
  }

  async text() {
    return (await this.#all()).toString('utf8')
  }

  async json() {
    return JSON.parse(await this.text())
  }

  async arrayBuffer() {
    const b = await this.#all()
    if (b.byteOffset === 0 && b.byteLength === b.buffer.byteLength) return b.buffer
    return b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength)
  }

  async bytes() {
    const b = await this.#all()
    return new Uint8Array(b.buffer, b.byteOffset, b.byteLength)
  }

  async blob() {
    return new Blob([await this.#all()])
  }

  async dump({ limit = 128 * 1024 } = {}) {
    if (this.#used) {
      if (!this.#done) this.cancel()
      return
    }
    this.#used = true
    let seen = 0
    try {
      for (;;) {
        const chunk = await this.#next()
        if (chunk === null) return
        seen += chunk.length
        if (seen > limit) {
          this.cancel()
          return
        }
      }
    } catch {
      // Dumping discards the body, its errors included.
    }
  }

  cancel() {
    this.#used = true
    this.#res.cancel()
    this.#finish(false)
  }

  toReadable(options) {
    this.#claim()
    return Readable.from(this.#iterate(), { objectMode: false, ...options })
  }

  toWeb() {
    this.#claim()
    const it = this.#iterate()
    return new ReadableStream({
      async pull(controller) {
        const { value, done } = await it.next()
        if (done) controller.close()
        else controller.enqueue(new Uint8Array(value.buffer, value.byteOffset, value.byteLength))
      },
      async cancel() {
        await it.return()
      },
    }, { highWaterMark: 0 })
  }
}

function requestFailed(e, signal, states) {
  let cause
  if (signal?.aborted) cause = signal.reason
  else cause = states.find((state) => state.error !== undefined)?.error
  return convert(e, cause)
}

// ---- datagram channels and UDP tunnels ------------------------------------------------------

/**
 * The next payload of a native channel or tunnel: from `queue`, else from the next batch the
 * native side delivers (the rest of the batch is queued, behind what earlier receives queued,
 * so concurrent receives keep the order of arrival); `null` at the end.
 */
async function receive(source, queue) {
  if (queue.length > 0) return queue.shift()
  let batch
  try {
    batch = await source.recv(1024)
  } catch (e) {
    throw convert(e)
  }
  if (batch !== null) for (const d of batch) queue.push(d)
  return queue.length > 0 ? queue.shift() : null
}

/** Reads a DatagramEndpoint's native object (for its subclasses). */
let nativeOf

/**
 * What a datagram channel and a UDP tunnel share: the 2xx answer to their CONNECT, payloads
 * both ways (received ones in batches, queued here), close, destroy and async iteration.
 */
class DatagramEndpoint {
  #native
  #queue = []

  static {
    nativeOf = (endpoint) => endpoint.#native
  }

  /** @internal */
  constructor(native) {
    this.#native = native
    this.statusCode = native.status
    this.httpVersion = native.version
    this.headers = headersObject(native.headers())
  }

  send(payload) {
    const buf = toBuffer(payload)
    callNative(() => this.#native.send(buf))
  }

  recv() {
    return receive(this.#native, this.#queue)
  }

  async close() {
    try {
      await this.#native.close()
    } catch (e) {
      throw convert(e)
    }
  }

  destroy() {
    this.#native.destroy()
  }

  get ended() {
    return this.#queue.length === 0 && this.#native.ended
  }

  async * [Symbol.asyncIterator]() {
    for (;;) {
      const d = await this.recv()
      if (d === null) return
      yield d
    }
  }
}

/** An RFC 9297 datagram channel; see index.d.ts. */
class DatagramChannel extends DatagramEndpoint {
  async recvData() {
    try {
      return await nativeOf(this).recvData()
    } catch (e) {
      throw convert(e)
    }
  }

  get maxDatagramSize() {
    return nativeOf(this).maxDatagramSize
  }

  get trailers() {
    const t = nativeOf(this).trailers()
    return t === null ? null : headersObject(t)
  }
}

/** A MASQUE UDP tunnel (RFC 9298) through a proxy; see index.d.ts. */
class UdpTunnel extends DatagramEndpoint {
  /** @internal */
  constructor(t) {
    super(t)
    this.target = t.target
  }

  get maxPayload() {
    return nativeOf(this).maxPayload
  }
}

// ---- the cookie jar -------------------------------------------------------------------------

function cookieOf(c) {
  return {
    name: c.name,
    value: c.value,
    domain: c.domain,
    hostOnly: c.hostOnly,
    path: c.path,
    secure: c.secure,
    httpOnly: c.httpOnly,
    sameSite: c.sameSite ?? null,
    expires: c.expires === undefined || c.expires === null ? null : new Date(c.expires),
  }
}

function requireString(value, what) {
  if (typeof value !== 'string') throw quiverError('invalid_config', `${what} must be a string, got ${typeName(value)}`)
  return value
}

/** A client's cookie jar (`client.cookies`); see index.d.ts. */
class CookieJar {
  #native

  /** @internal */
  constructor(jar) {
    this.#native = jar
  }

  list() {
    return this.#native.list().map(cookieOf)
  }

  get(url) {
    const href = urlString(url)
    return callNative(() => this.#native.get(href)).map(cookieOf)
  }

  set(url, setCookie) {
    const href = urlString(url)
    requireString(setCookie, 'the set-cookie value')
    callNative(() => this.#native.set(href, setCookie))
  }

  delete(domain, path, name) {
    return this.#native.remove(requireString(domain, 'the domain'), requireString(path, 'the path'),
      requireString(name, 'the name'))
  }

  clear(domain) {
    this.#native.clear(domain === undefined || domain === null ? null : requireString(domain, 'the domain'))
  }

  exportNetscape() {
    return this.#native.exportNetscape()
  }

  importNetscape(text) {
    requireString(text, 'the cookie file')
    return callNative(() => this.#native.importNetscape(text))
  }
}

// ---- the client -----------------------------------------------------------------------------

function urlString(url) {
  if (typeof url === 'string') return url
  if (url instanceof URL) return url.href
  if (url !== null && typeof url === 'object' && typeof url.href === 'string') return url.href
  throw quiverError('invalid_url', `the URL must be a string or a URL, got ${url === null ? 'null' : typeof url}`)
}

/**
 * The response `request()` resolves with. What most callers never look at (headers, URL,
 * history, timings) is built on first use, each a call into the addon; the accessors live on
 * the class, not on each response (an object literal with getters is slow to make).
 */
class ResponseData {
  #res
  #headers = null
  #history = null
  #url = null
  #timings = null

  /** @internal */
  constructor({ res, release, signal }) {
    this.#res = res
    this.statusCode = res.status
    this.httpVersion = res.version
    this.trailers = {}
    this.body = new ResponseBody(res, this.trailers, release, signal)
  }

  get headers() {
    this.#headers ??= headersObject(this.#res.headers())
    return this.#headers
  }

  get url() {
    this.#url ??= this.#res.url
    return this.#url
  }

  get redirected() {
    return this.#historyOf().length > 0
  }

  get history() {
    return this.#historyOf()
  }

  get unfollowedRedirect() {
    return this.#res.unfollowedRedirect ?? null
  }

  get timings() {
    this.#timings ??= timingsOf(this.#res.timings())
    return this.#timings
  }

  #historyOf() {
    this.#history ??= this.#res.history().map((h) => ({
      statusCode: h.statusCode,
      url: h.url,
      httpVersion: h.httpVersion,
      headers: headersObject(h.headers),
    }))
    return this.#history
  }
}

/** Shapes what `#send` resolved with into the response `request()` resolves with. */
const responseData = (sent) => new ResponseData(sent)

/**
 * `client.#send(url, options)` counted in flight, for the adapters (adapters.js): resolves with
 * `{ res, release, signal }`, the native response once its head has arrived.
 */
let sendNative

/** A Client's observer (diagnostics.js), for the Agent's connection events. */
let observerOf

/** An HTTP client with a pool per origin; see index.d.ts. */
class Client {
  #native
  #observer = new Observer()
  #inflight = 0
  #drained = []
  #closing = null
  #cookies = null

  constructor(options) {
    const entries = optionEntries(options)
    // The native side wakes the observer when events wait; through a WeakRef, so that the
    // wake-up (held by the native client) does not keep this client from being collected.
    const observer = new WeakRef(this.#observer)
    this.#native = callNative(() => new native.NativeClient(entries, () => observer.deref()?.drain()))
    this.#observer.attach(this.#native)
    const jar = this.#native.cookies()
    if (jar !== null && jar !== undefined) this.#cookies = new CookieJar(jar)
  }

  get closed() {
    return this.#closing !== null
  }

  static {
    sendNative = (client, url, options) => client.#send(url, options, undefined)
    observerOf = (client) => client.#observer
  }

  request(url, options) {
    return this.#send(url, options, responseData)
  }

  /**
   * Sends a request: resolves once its head has arrived with `shape({ res, release, signal })`
   * (or that object itself when `shape` is undefined): the native response, and the function
   * that detaches the abort listener (to call when the body is done with). Counted in flight
   * until it settles (`close()` waits for those); the count drops before the caller's Promise
   * settles, as `close()` promises. One async function per request, not two.
   */
  async #send(url, options, shape) {
    this.#inflight++
    try {
      const started = this.#start(url, options)
      let res
      try {
        res = await started.sending
      } catch (e) {
        throw started.failed(e)
      }
      started.watch?.responded(res)
      const sent = { res, release: started.release, signal: started.signal }
      return shape === undefined ? sent : shape(sent)
    } finally {
      if (--this.#inflight === 0) for (const wake of this.#drained.splice(0)) wake()
    }
  }

  /**
   * Starts `#send`'s request: checks and prepares it, calls into the addon, and returns the
   * native Promise with what settling it needs (a plain function: `#send` is the one await).
   */
  #start(url, options) {
    if (this.#closing !== null) throw quiverError('shutdown', 'the client is closed')
    const { method = 'GET', headers, body, signal, progress } = options ?? {}
    const href = urlString(url)
    if (signal?.aborted) {
      throw quiverError('cancelled', 'the request was aborted', { cause: signal.reason })
    }
    const verb = normaliseMethod(method)
    const flat = flattenHeaders(headers)
    const settings = requestSettings(options ?? {})
    const nativeProgress = progressOption(progress)
    const prepared = prepareBody(body)
    if (prepared.contentType != null && !hasHeader(flat, 'content-type')) flat.push('content-type', prepared.contentType)
    if (prepared.length !== undefined && !hasHeader(flat, 'content-length') && !hasHeader(flat, 'transfer-encoding')) {
      flat.push('content-length', String(prepared.length))
    }
    // `null` unless some channel has subscribers; publishes `undici:request:create`, whose
    // subscribers may add headers (sent below).
    const watch = this.#observer.start(href, verb, flat)
    let call = null
    let onAbort = null
    if (signal) {
      call = new native.RequestCall()
      onAbort = () => call.cancel()
      signal.addEventListener('abort', onAbort, { once: true })
    }
    // Called once the body is done with (ResponseBody): detaches the abort listener and ends
    // the watch.
    const release = onAbort === null && watch === null ? null : (clean, error, trailers) => {
      if (onAbort !== null) signal.removeEventListener('abort', onAbort)
      watch?.ended(clean, error, trailers, signal)
    }
    // The failure of the native call (or of the addon's Promise): the error to throw.
    const failed = (e) => {
      if (onAbort !== null) signal.removeEventListener('abort', onAbort)
      const err = requestFailed(e, signal, prepared.states)
      watch?.failed(signal?.aborted ? signal.reason : err)
      return err
    }
    let sending
    try {
      sending = this.#native.send(verb, href, watch === null ? flat : watch.headers(), settings, prepared.bytes,
        prepared.upload, prepared.form, call, nativeProgress, watch === null ? null : watch.tag)
    } catch (e) {
      throw failed(e)
    }
    return { sending, failed, watch, release, signal }
  }

  get cookies() {
    return this.#cookies
  }

  async openDatagramChannel(url, options) {
    if (this.#closing !== null) throw quiverError('shutdown', 'the client is closed')
    const { headers, protocol, queue } = options ?? {}
    const href = urlString(url)
    const flat = flattenHeaders(headers)
    let ch
    try {
      ch = await this.#native.openDatagramChannel(href, flat, protocol ?? null, queue ?? null)
    } catch (e) {
      throw convert(e)
    }
    return new DatagramChannel(ch)
  }

  async openUdpTunnel(proxy, host, port, options) {
    if (this.#closing !== null) throw quiverError('shutdown', 'the client is closed')
    const { protocol, headers } = options ?? {}
    const href = urlString(proxy)
    if (typeof host !== 'string' || host === '') {
      throw quiverError('invalid_url', `the target host must be a non-empty string, got ${host === null ? 'null' : typeof host}`)
    }
    if (!Number.isInteger(port) || port < 1 || port > 65535) {
      throw quiverError('invalid_url', `the target port must be an integer from 1 to 65535, got ${port}`)
    }
    if (protocol !== undefined && protocol !== null && typeof protocol !== 'string') {
      throw quiverError('invalid_config', `the tunnel \`protocol\` must be a string, got ${typeof protocol}`)
    }
    const flat = flattenHeaders(headers)
    let t
    try {
      t = await this.#native.openUdpTunnel(href, host, port, protocol ?? null, flat)
    } catch (e) {
      throw convert(e)
    }
    return new UdpTunnel(t)
  }

  closeAllTunnels() {
    callNative(() => this.#native.closeAllTunnels())
  }

  stats() {
    return callNative(() => this.#native.stats())
  }

  /**
   * Closes the client now (core's close, the same in every binding): every connection closes
   * and whatever is in flight on it ends with `shutdown`; resolves once those requests have
   * settled.
   */
  close() {
    if (this.#closing === null) {
      this.#native.close()
      this.#closing = (async () => {
        if (this.#inflight > 0) await new Promise((resolve) => this.#drained.push(resolve))
      })()
    }
    return this.#closing
  }
}

let defaultClient = null

/** `request()` on a default client, created on first use. */
function request(url, options) {
  if (defaultClient === null) defaultClient = new Client()
  return defaultClient.request(url, options)
}

/** Delivers `client`'s connection events to `agent` (`connect`, `disconnect`, `connectionError`). */
function followConnections(client, agent) {
  observerOf(client).follow(agent)
}

const { Agent, fetch } = require('./adapters.js')({
  Client, QuiverError, ResponseBody, quiverError, sendNative, headersObject, isFormDataLike, isBlobLike, followConnections,
})

module.exports = {
  Agent,
  Client,
  CookieJar,
  DatagramChannel,
  Progress,
  QuiverError,
  ResponseBody,
  UdpTunnel,
  errorKinds,
  fetch,
  native,
  request,
  version: native.version(),
  // Which artifact the generated loader loaded (declared by the generated index.d.ts).
  __napiBindingTarget: binding.__napiBindingTarget,
}
