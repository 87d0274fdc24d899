'use strict'
// The drop-in adapters (types: index.d.ts; README "Drop-in dispatcher and fetch"):
//
// - `Agent`: an undici Dispatcher whose requests run on a quiver Client, so that undici's
//   request()/stream()/fetch() and Node's global fetch get quiver's pools, HTTP/2 and HTTP/3.
// - `fetch`: WHATWG fetch on a quiver Client, with Node's own Request/Response/Headers.
//
// Translation only. What the code above an adapter does stays there, so the Agent sends every
// request with quiver's redirects off (manual), decoding off, no cookie jar and no credentials:
// undici's fetch and its interceptors do those. quiver.fetch, being the whole of fetch, lets
// quiver follow redirects and decode. undici itself is not needed to load this file (it is an
// optional dependency): only the Dispatcher API methods (`agent.request()`, ...) load it.

const EventEmitter = require('node:events')
const { rawOf, statusText } = require('./diagnostics.js')
const { stringify: stringifyQuery } = require('node:querystring')

/** A year in ms: core's longest timeout, standing in for undici's 0 ("no timeout"). */
const NO_TIMEOUT_MS = 365 * 86_400_000

/** Statuses whose response has no body (fetch's "null body status"). */
const NULL_BODY_STATUS = new Set([101, 103, 204, 205, 304])

/** Request headers undici refuses (it manages them itself); quiver.Agent refuses them too. */
const REFUSED_HEADERS = new Set(['transfer-encoding', 'keep-alive', 'upgrade'])

function rawOfObject(headers) {
  const out = []
  if (headers === null || headers === undefined) return out
  for (const [name, value] of Object.entries(headers)) {
    if (Array.isArray(value)) {
      for (const v of value) out.push(Buffer.from(name, 'latin1'), Buffer.from(String(v), 'latin1'))
    } else if (value !== undefined) {
      out.push(Buffer.from(name, 'latin1'), Buffer.from(String(value), 'latin1'))
    }
  }
  return out
}

/** The `undici` package, loaded on first use (it is optional). */
let undiciModule = null
function undici(what) {
  if (undiciModule === null) {
    try {
      undiciModule = require('undici')
    } catch (e) {
      throw new Error(`${what} comes from undici's Dispatcher API: install the \`undici\` package ` +
        '(or call undici.request(url, { dispatcher: agent }), or use the agent as the global dispatcher)', { cause: e })
    }
  }
  return undiciModule
}

module.exports = function adapters(quiver) {
  const {
    Client, QuiverError, ResponseBody, quiverError, sendNative, headersObject, isFormDataLike, isBlobLike, followConnections,
  } = quiver

  // ---- handlers --------------------------------------------------------------------------

  /**
   * A legacy handler (`onConnect`, `onHeaders`, `onData`, `onComplete`, `onError`: what Node
   * 20's bundled fetch and undici's request()/stream() pass) as a controller-style one (undici
   * 7's `onRequestStart`, `onResponseStart`, ...), which is what the Agent drives; the same
   * translation as undici's own WrapHandler.
   */
  class LegacyHandler {
    #h

    constructor(handler) {
      this.#h = handler
      // Only when the handler has them: the Agent then reports bytes sent and the first byte.
      if (typeof handler.onBodySent === 'function') this.onBodySent = (chunk) => handler.onBodySent(chunk)
      if (typeof handler.onResponseStarted === 'function') this.onResponseStarted = () => handler.onResponseStarted()
    }

    onRequestStart(controller, context) {
      this.#h.onConnect?.((reason) => controller.abort(reason), context)
    }

    onResponseStart(controller, statusCode, headers, statusMessage) {
      const raw = ownRaw(controller, headers) ?? rawOfObject(headers)
      if (this.#h.onHeaders?.(statusCode, raw, () => controller.resume(), statusMessage) === false) controller.pause()
    }

    onResponseData(controller, chunk) {
      if (this.#h.onData?.(chunk) === false) controller.pause()
    }

    onResponseEnd(controller, trailers) {
      this.#h.onComplete?.(ownRaw(controller, trailers) ?? rawOfObject(trailers))
    }

    onResponseError(controller, err) {
      if (typeof this.#h.onError !== 'function') throw err
      this.#h.onError(err)
    }
  }

  /** A handler as the Agent drives it: controller style, legacy ones wrapped. */
  function controllerHandler(handler) {
    return typeof handler.onRequestStart === 'function' ? handler : new LegacyHandler(handler)
  }

  // ---- one dispatched request ------------------------------------------------------------

  /**
   * The raw list of `headers` when they are exactly what the Agent delivered (exact order and
   * repeats); `null` when an interceptor in between built its own.
   */
  let ownRaw

  /**
   * One request from `dispatch()` to its end, and the DispatchController its handler holds:
   * `pause()` stops pulling quiver's body (which then fills its bounded read-ahead and stops
   * reading the connection), `resume()` pulls again, `abort(reason)` cancels the request and
   * ends it with `onResponseError(reason)`. Each handler callback is called at most once per
   * phase, and nothing after the end or the error.
   */
  class Exchange {
    #agent
    #handler
    #paused = false
    #aborted = false
    #reason = null
    #settled = false
    #wake = null
    #abort = new AbortController()
    #headers = null
    #trailers = null
    #unlisten = null
    rawHeaders = null
    rawTrailers = null

    static {
      ownRaw = (controller, headers) => {
        if (!(controller instanceof Exchange)) return null
        if (headers === controller.#headers) return controller.rawHeaders
        if (headers === controller.#trailers) return controller.rawTrailers
        return null
      }
    }

    constructor(agent, handler) {
      this.#agent = agent
      this.#handler = handler
    }

    get aborted() {
      return this.#aborted
    }

    get paused() {
      return this.#paused
    }

    get reason() {
      return this.#reason
    }

    pause() {
      this.#paused = true
    }

    resume() {
      if (!this.#paused) return
      this.#paused = false
      this.#wakeUp()
    }

    abort(reason) {
      if (this.#aborted || this.#settled) return
      this.#aborted = true
      this.#reason = reason ?? quiverError('cancelled', 'the request was aborted')
      // Cancels quiver's request (before its head) or its body (after): HTTP/1.1 closes the
      // connection, HTTP/2 and HTTP/3 reset the stream.
      this.#abort.abort(this.#reason)
      this.#wakeUp()
      // Delivered on its own turn: abort() is often called from inside a handler callback.
      queueMicrotask(() => this.#fail(this.#reason))
    }

    #wakeUp() {
      const wake = this.#wake
      this.#wake = null
      if (wake !== null) wake()
    }

    /**
     * A validation error before anything started: the handler hears it at once, as with
     * undici's dispatchers (and one that cannot hear errors gets it thrown from `dispatch()`).
     */
    refuse(err) {
      this.#cleanup()
      this.#report(err, true)
    }

    /** Calls a handler callback; one that throws aborts the request with what it threw. */
    #call(fn) {
      try {
        fn()
      } catch (e) {
        this.abort(e)
      }
      return !this.#aborted && !this.#settled
    }

    #cleanup() {
      this.#settled = true
      if (this.#unlisten !== null) this.#unlisten()
      this.#agent[kSettled](this)
    }

    #fail(err) {
      if (this.#settled) return
      this.#cleanup()
      this.#report(err)
    }

    #report(err, sync = false) {
      try {
        if (typeof this.#handler.onResponseError !== 'function') throw err
        this.#handler.onResponseError(this, err)
      } catch (e) {
        // A handler that cannot take an error (none, or one that throws): undici throws it;
        // so does this, out of band where it is not in a dispatch() call, so it is seen.
        if (sync) throw e
        queueMicrotask(() => {
          throw e
        })
      }
    }

    /** Follows `signal` (undici's `opts.signal`: an AbortSignal or an EventEmitter). */
    listen(signal) {
      if (signal === null || signal === undefined) return
      if (signal.aborted) {
        this.abort(signal.reason)
        return
      }
      const onAbort = () => this.abort(signal.reason)
      if (typeof signal.addEventListener === 'function') {
        signal.addEventListener('abort', onAbort, { once: true })
        this.#unlisten = () => signal.removeEventListener('abort', onAbort)
      } else if (typeof signal.on === 'function') {
        signal.on('abort', onAbort)
        this.#unlisten = () => signal.removeListener('abort', onAbort)
      }
    }

    async run(client, url, options, sentBytes) {
      const h = this.#handler
      if (!this.#call(() => h.onRequestStart?.(this, {}))) return
      let sent
      try {
        sent = await sendNative(client, url, { ...options, signal: this.#abort.signal })
      } catch (e) {
        if (!this.#aborted) this.#fail(e)
        return
      }
      const { res, release, signal } = sent
      const trailers = {}
      const body = new ResponseBody(res, trailers, release, signal)
      if (this.#aborted || this.#settled) {
        body.cancel()
        return
      }
      const flat = res.headers()
      this.rawHeaders = rawOf(flat)
      this.#headers = headersObject(flat)
      if (sentBytes !== null && h.onBodySent !== undefined && !this.#call(() => h.onBodySent(sentBytes))) return
      if (h.onResponseStarted !== undefined && !this.#call(() => h.onResponseStarted())) return
      const status = res.status
      if (!this.#call(() => h.onResponseStart?.(this, status, this.#headers, statusText(status, res.version)))) {
        body.cancel()
        return
      }
      const chunks = body[Symbol.asyncIterator]()
      for (;;) {
        // Paused: quiver's body is not pulled, so its bounded read-ahead fills and core stops
        // reading the connection (flow control reaches the server).
        while (this.#paused && !this.#aborted) await new Promise((resolve) => { this.#wake = resolve })
        if (this.#aborted) return
        let step
        try {
          step = await chunks.next()
        } catch (e) {
          if (!this.#aborted) this.#fail(e)
          return
        }
        if (this.#aborted) return
        if (step.done) break
        if (!this.#call(() => h.onResponseData?.(this, step.value))) {
          body.cancel()
          return
        }
      }
      this.rawTrailers = rawOfObject(trailers)
      this.#trailers = trailers
      this.#cleanup()
      try {
        h.onResponseEnd?.(this, trailers)
      } catch (e) {
        // As undici: a handler that throws at the end hears it as the request's error.
        this.#report(e)
      }
    }
  }

  // ---- dispatch options ------------------------------------------------------------------

  function timeoutOf(name, value) {
    if (value === undefined || value === null) return undefined
    if (typeof value !== 'number' || !(value >= 0) || value === Infinity) {
      throw quiverError('invalid_config', `\`${name}\` must be a non-negative number of milliseconds (0: none), got ${value}`)
    }
    return value === 0 ? NO_TIMEOUT_MS : Math.min(value, NO_TIMEOUT_MS)
  }

  /** undici's dispatch options as `client.request()` options: the URL, and what to send. */
  function translate(opts) {
    if (opts === null || typeof opts !== 'object') throw quiverError('invalid_config', 'the dispatch options must be an object')
    const { origin, path, method, headers, body, query, upgrade, maxRedirections } = opts
    if (typeof method !== 'string') throw quiverError('invalid_method', `the method must be a string, got ${typeof method}`)
    if (method.toUpperCase() === 'CONNECT') {
      throw quiverError('invalid_method', 'quiver.Agent does not open CONNECT tunnels (undici.connect()): use undici\'s own Agent for them')
    }
    if (upgrade) {
      throw quiverError('invalid_config', 'quiver.Agent does not upgrade connections (WebSocket, undici.upgrade()): use undici\'s own Agent for them')
    }
    if (maxRedirections !== undefined && maxRedirections !== null && maxRedirections !== 0) {
      throw quiverError('invalid_config',
        'maxRedirections is not supported by quiver.Agent (as by undici 7\'s): compose interceptors.redirect({ maxRedirections })')
    }
    if (typeof path !== 'string') throw quiverError('invalid_url', `the path must be a string, got ${typeof path}`)
    let url
    if (/^https?:\/\//i.test(path)) {
      url = path
    } else {
      if (path[0] !== '/') throw quiverError('invalid_url', `the path must start with a slash or be an absolute URL, got ${JSON.stringify(path)}`)
      let base
      try {
        base = new URL(String(origin)).origin
      } catch {
        throw quiverError('invalid_url', `the origin must be a URL, got ${origin === undefined ? 'none' : JSON.stringify(String(origin))}`)
      }
      url = base + path
    }
    if (query !== undefined && query !== null) {
      if (url.includes('?') || url.includes('#')) {
        throw quiverError('invalid_url', 'query params cannot be given when the path already has a `?` or `#`')
      }
      const q = stringifyQuery(query)
      if (q !== '') url += `?${q}`
    }
    let readTimeout = timeoutOf('headersTimeout', opts.headersTimeout)
    const bodyTimeout = timeoutOf('bodyTimeout', opts.bodyTimeout)
    // Core has one idle limit for the whole exchange: the longer of the two, so that it never
    // fails a request undici would have let through.
    if (bodyTimeout !== undefined) readTimeout = readTimeout === undefined ? bodyTimeout : Math.max(readTimeout, bodyTimeout)
    return { url, method, headers: requestHeaders(headers), body: body ?? null, readTimeout }
  }

  /** undici's header forms as a flat list; `connection` dropped and the ones it refuses refused, as undici does. */
  function requestHeaders(headers) {
    const out = []
    const add = (name, value) => {
      if (value === undefined) return
      const lower = String(name).toLowerCase()
      if (lower === 'connection') return // connection management is quiver's
      if (REFUSED_HEADERS.has(lower)) throw quiverError('invalid_header', `invalid ${lower} header: the connection's framing is quiver's`)
      if (Array.isArray(value)) {
        for (const v of value) out.push(String(name), v === null ? '' : String(v))
      } else {
        out.push(String(name), value === null ? '' : String(value))
      }
    }
    if (headers === undefined || headers === null) return out
    if (Array.isArray(headers)) {
      if (headers.length > 0 && !Array.isArray(headers[0])) {
        if (headers.length % 2 !== 0) throw quiverError('invalid_header', 'a flat header array needs an even length')
        for (let i = 0; i < headers.length; i += 2) add(headers[i], headers[i + 1])
      } else {
        for (const [name, value] of headers) add(name, value)
      }
    } else if (typeof headers === 'object' && typeof headers[Symbol.iterator] === 'function') {
      for (const [name, value] of headers) add(name, value)
    } else if (typeof headers === 'object') {
      for (const name of Object.keys(headers)) add(name, headers[name])
    } else {
      throw quiverError('invalid_header', 'headers must be an object, an array or an iterable of pairs')
    }
    return out
  }

  /**
   * The body to send, and the bytes to report to `onBodySent` once the response starts (a body
   * in memory); a streamed body reports each chunk as quiver takes it.
   */
  function observedBody(body, onBodySent) {
    if (body === null || onBodySent === undefined) return { body, sentBytes: null }
    if (typeof body === 'string') return { body, sentBytes: Buffer.from(body) }
    if (ArrayBuffer.isView(body)) return { body, sentBytes: Buffer.from(body.buffer, body.byteOffset, body.byteLength) }
    if (body instanceof ArrayBuffer) return { body, sentBytes: Buffer.from(body) }
    if (isFormDataLike(body) || isBlobLike(body) || body instanceof URLSearchParams) return { body, sentBytes: null }
    if (typeof body[Symbol.asyncIterator] === 'function' || typeof body[Symbol.iterator] === 'function') {
      const source = body
      const reporting = (async function * () {
        for await (const chunk of source) {
          yield chunk
          onBodySent(typeof chunk === 'string' ? Buffer.from(chunk) : chunk)
        }
      })()
      return { body: reporting, sentBytes: null }
    }
    return { body, sentBytes: null }
  }

  // ---- the Agent -------------------------------------------------------------------------

  const kClient = Symbol('quiver.client')
  const kInflight = Symbol('quiver.inflight')
  const kIdle = Symbol('quiver.idle')
  const kClosing = Symbol('quiver.closing')
  const kDestroying = Symbol('quiver.destroying')
  const kSettled = Symbol('quiver.settled')

  /** Wraps legacy handlers for the interceptors above it (undici's `wrapInterceptor`). */
  const wrapInterceptor = (dispatch) => (opts, handler) => dispatch(opts, controllerHandler(handler))

  const callbackOr = (promise, callback) => {
    if (callback === undefined) return promise
    if (typeof callback !== 'function') throw quiverError('invalid_config', 'the callback must be a function')
    promise.then(() => callback(null, null), (e) => callback(e, null))
    return undefined
  }

  // State lives under symbols, not #private fields: `compose()` returns a Proxy of the agent,
  // and methods called through it see the Proxy as `this`.
  /** An undici Dispatcher on a quiver Client; see index.d.ts. */
  class Agent extends EventEmitter {
    constructor(options) {
      super()
      if (options !== undefined && options !== null && typeof options === 'object' && options.cookies) {
        throw quiverError('invalid_config',
          'quiver.Agent keeps no cookie jar: cookies belong to the code above the dispatcher (undici\'s fetch has none)')
      }
      this[kClient] = new Client(options)
      // undici's Dispatcher events `connect`, `disconnect` and `connectionError`, from core's
      // connection events (built only while this agent has listeners for them).
      followConnections(this[kClient], this)
      this[kInflight] = new Set()
      this[kIdle] = []
      this[kClosing] = null
      this[kDestroying] = null
    }

    /** True once `close()` or `destroy()` was called. */
    get closed() {
      return this[kClosing] !== null || this[kDestroying] !== null
    }

    /** True once `destroy()` was called. */
    get destroyed() {
      return this[kDestroying] !== null
    }

    dispatch(opts, handler) {
      if (handler === null || typeof handler !== 'object') throw quiverError('invalid_config', 'handler must be an object')
      const h = controllerHandler(handler)
      const exchange = new Exchange(this, h)
      let req
      let body
      try {
        if (this.closed) throw quiverError('shutdown', this.destroyed ? 'the agent was destroyed' : 'the agent is closed')
        req = translate(opts)
        body = observedBody(req.body, h.onBodySent)
      } catch (e) {
        exchange.refuse(e)
        return false
      }
      this[kInflight].add(exchange)
      exchange.listen(opts.signal)
      const options = {
        method: req.method,
        headers: req.headers,
        body: body.body,
        readTimeout: req.readTimeout,
        // The code above does these (fetch, interceptors): quiver must not do them twice.
        redirect: 'manual',
        decompress: false,
        auth: null,
      }
      exchange.run(this[kClient], req.url, options, body.sentBytes).catch((e) => exchange.abort(e))
      return true
    }

    [kSettled](exchange) {
      const inflight = this[kInflight]
      if (inflight.delete(exchange) && inflight.size === 0) for (const wake of this[kIdle].splice(0)) wake()
    }

    compose(...args) {
      const interceptors = Array.isArray(args[0]) ? args[0] : args
      let dispatch = this.dispatch.bind(this)
      for (const interceptor of interceptors) {
        if (interceptor === null || interceptor === undefined) continue
        if (typeof interceptor !== 'function') throw new TypeError(`invalid interceptor, expected function received ${typeof interceptor}`)
        dispatch = interceptor(dispatch)
        if (typeof dispatch !== 'function') throw new TypeError('invalid interceptor')
        dispatch = wrapInterceptor(dispatch)
      }
      return new Proxy(this, { get: (target, key) => (key === 'dispatch' ? dispatch : target[key]) })
    }

    close(callback) {
      if (this[kClosing] === null) {
        this[kClosing] = (async () => {
          if (this[kInflight].size > 0) await new Promise((resolve) => this[kIdle].push(resolve))
          await this[kClient].close()
        })()
      }
      return callbackOr(this[kClosing], callback)
    }

    destroy(err, callback) {
      if (typeof err === 'function') {
        callback = err
        err = null
      }
      if (this[kDestroying] === null) {
        const reason = err ?? quiverError('shutdown', 'the agent was destroyed')
        for (const exchange of [...this[kInflight]]) exchange.abort(reason)
        this[kDestroying] = this[kClient].close()
      }
      return callbackOr(this[kDestroying], callback)
    }

    /** The quiver client's pool statistics. */
    stats() {
      return this[kClient].stats()
    }

    request(opts, callback) {
      return undici('agent.request()').Dispatcher.prototype.request.call(this, opts, callback)
    }

    stream(opts, factory, callback) {
      return undici('agent.stream()').Dispatcher.prototype.stream.call(this, opts, factory, callback)
    }

    pipeline(opts, handler) {
      return undici('agent.pipeline()').Dispatcher.prototype.pipeline.call(this, opts, handler)
    }

    connect(opts, callback) {
      return undici('agent.connect()').Dispatcher.prototype.connect.call(this, opts, callback)
    }

    upgrade(opts, callback) {
      return undici('agent.upgrade()').Dispatcher.prototype.upgrade.call(this, opts, callback)
    }
  }

  // ---- fetch -----------------------------------------------------------------------------

  /** Whether fetch takes `body` as a stream (a ReadableStream or an async iterable). */
  function isStreamedBody(body) {
    return typeof body !== 'string' && !ArrayBuffer.isView(body) && !(body instanceof ArrayBuffer) &&
      !(body instanceof URLSearchParams) && !isBlobLike(body) && !isFormDataLike(body)
  }

  function responseUrl(url) {
    const hash = url.indexOf('#')
    return hash === -1 ? url : url.slice(0, hash)
  }

  /** What fetch's Response has and a constructed one lacks: `url`, `redirected`, `type`. */
  function completeResponse(response, meta) {
    const clone = response.clone
    Object.defineProperties(response, {
      url: { value: meta.url, enumerable: true },
      redirected: { value: meta.redirected, enumerable: true },
      type: { value: 'basic', enumerable: true },
      clone: {
        value: function cloneResponse() {
          return completeResponse(clone.call(this), meta)
        },
      },
    })
    return response
  }

  /** The response body as a web stream pulled from quiver's body, one read at a time. */
  function bodyStream(body, signal) {
    const chunks = body[Symbol.asyncIterator]()
    let onAbort = null
    const unlisten = () => {
      if (onAbort !== null) signal.removeEventListener('abort', onAbort)
      onAbort = null
    }
    return new ReadableStream({
      start(controller) {
        // Aborting after the head errors the body at once, as fetch does (quiver's body is
        // cancelled by the same signal).
        onAbort = () => {
          unlisten()
          try {
            controller.error(signal.reason)
          } catch {
            // Already closed or errored.
          }
        }
        signal.addEventListener('abort', onAbort, { once: true })
      },
      async pull(controller) {
        let step
        try {
          step = await chunks.next()
        } catch (e) {
          unlisten()
          controller.error(signal.aborted ? signal.reason : new TypeError('terminated', { cause: e }))
          return
        }
        if (step.done) {
          unlisten()
          controller.close()
        } else {
          const b = step.value
          controller.enqueue(new Uint8Array(b.buffer, b.byteOffset, b.byteLength))
        }
      },
      async cancel() {
        unlisten()
        await chunks.return()
      },
    }, { highWaterMark: 0 })
  }

  async function fetchOn(client, input, init) {
    // fetch's own checks and defaults (URL, method, headers, content-type, `duplex`), by
    // Node's Request.
    const request = new Request(input, init)
    const signal = request.signal
    if (signal.aborted) throw signal.reason
    const given = init?.body
    // As given, a body in memory, a Blob or a FormData: quiver knows its length
    // (content-length) and can send it again on a 307/308. Streams: the Request's stream.
    const asGiven = request.body !== null && given !== undefined && given !== null && !isStreamedBody(given)
    // A FormData goes with quiver's multipart content-type (its own boundary), not Request's.
    const skip = asGiven && isFormDataLike(given) ? 'content-type' : null
    const headers = []
    for (const [name, value] of request.headers) if (name !== skip) headers.push(name, value)
    const body = request.body === null ? null : asGiven ? given : request.body
    let sent
    try {
      sent = await sendNative(client, request.url, {
        method: request.method,
        headers,
        body,
        signal,
        redirect: request.redirect,
        decompress: true,
        progress: init?.progress,
      })
    } catch (e) {
      if (signal.aborted) throw signal.reason
      throw e instanceof QuiverError ? new TypeError('fetch failed', { cause: e }) : e
    }
    const { res, release } = sent
    const quiverBody = new ResponseBody(res, {}, release, signal)
    const status = res.status
    const responseHeaders = new Headers()
    const flat = res.headers()
    for (let i = 0; i < flat.length; i += 2) responseHeaders.append(flat[i], flat[i + 1])
    let stream = null
    if (NULL_BODY_STATUS.has(status) || request.method === 'HEAD') {
      quiverBody.dump() // empty: reading it to its end gives the connection back
    } else {
      stream = bodyStream(quiverBody, signal)
    }
    let response
    try {
      response = new Response(stream, { status, statusText: statusText(status, res.version), headers: responseHeaders })
    } catch (e) {
      // A status a Response cannot hold (below 200 or above 599).
      quiverBody.cancel()
      throw new TypeError('fetch failed', { cause: e })
    }
    return completeResponse(response, { url: responseUrl(res.url), redirected: res.history().length > 0 })
  }

  let defaultClient = null

  /** WHATWG fetch on a default quiver client (created on first use); see index.d.ts. */
  function fetch(input, init) {
    // fetch's own limit on redirects (20) rather than quiver's default (10).
    if (defaultClient === null) defaultClient = new Client({ maxRedirects: 20 })
    return fetchOn(defaultClient, input, init)
  }

  /** fetch on `client`: its pools, protocol and options. */
  fetch.withClient = function withClient(client) {
    if (!(client instanceof Client)) throw new TypeError('fetch.withClient() takes a quiver Client')
    return function fetch(input, init) {
      return fetchOn(client, input, init)
    }
  }

  return { Agent, fetch }
}
