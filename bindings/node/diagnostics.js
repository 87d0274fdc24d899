'use strict'
// Observability for quiver-http (README "Observability"; types: index.d.ts): core's request
// and connection events published on `diagnostics_channel`, under undici's channel names and
// message shapes (so instrumentation written for undici, such as
// @opentelemetry/instrumentation-undici, works unchanged) and quiver's own (`quiver:*`), and
// the connection events of `quiver.Agent` (`connect`, `disconnect`, `connectionError`).
//
// Nothing is built while nobody listens: a request is watched only when some channel has
// subscribers as it starts, and core builds no event while neither a channel fed by core
// events nor an Agent's connection listener is there (the native listener's flag, refreshed as
// each request starts and as events are taken).
//
// Order. A request's channels are published in the order things happened: what JavaScript
// sees itself (the head, the end of the body, a failure) is published only after the core
// events that came before it were taken from the native queue (`takeEvents()`, synchronous);
// the rest are taken when the native side wakes JavaScript.

const dc = require('node:diagnostics_channel')
const { STATUS_CODES } = require('node:http')
const { isIP } = require('node:net')

const undici = {
  create: dc.channel('undici:request:create'),
  bodySent: dc.channel('undici:request:bodySent'),
  headers: dc.channel('undici:request:headers'),
  trailers: dc.channel('undici:request:trailers'),
  error: dc.channel('undici:request:error'),
  sendHeaders: dc.channel('undici:client:sendHeaders'),
  beforeConnect: dc.channel('undici:client:beforeConnect'),
  connected: dc.channel('undici:client:connected'),
  connectError: dc.channel('undici:client:connectError'),
}

const quiver = {
  event: dc.channel('quiver:event'),
  retried: dc.channel('quiver:request:retried'),
  redirected: dc.channel('quiver:request:redirected'),
  timings: dc.channel('quiver:request:timings'),
  opened: dc.channel('quiver:connection:opened'),
  tls: dc.channel('quiver:connection:tls'),
  goaway: dc.channel('quiver:connection:goaway'),
  closed: dc.channel('quiver:connection:closed'),
}

/** The channels fed by core events: while one has subscribers, core builds events. */
const FROM_CORE = [
  undici.sendHeaders, undici.bodySent, undici.beforeConnect, undici.connected, undici.connectError,
  quiver.event, quiver.retried, quiver.redirected, quiver.opened, quiver.tls, quiver.goaway, quiver.closed,
]

/** The channels JavaScript publishes from what it sees of a request itself. */
const FROM_JS = [undici.create, undici.headers, undici.trailers, undici.error, quiver.timings]

/** `quiver.Agent`'s connection events (undici's Dispatcher events). */
const AGENT_EVENTS = ['connect', 'disconnect', 'connectionError']

/** The events of a connection being made (the first one seen publishes `beforeConnect`). */
const DIALING = new Set(['dns_resolved', 'connected', 'tls_done', 'connection_opened', 'connection_failed'])

/** Most connections remembered (their address, ALPN) between their events. */
const CONNECTIONS_LIMIT = 4096

/**
 * Most requests remembered between their start and their end (a response nobody reads to its
 * end, and that is garbage-collected, ends no watch): the oldest are forgotten beyond it.
 */
const REQUESTS_LIMIT = 16384

/** `map.set(key, value)`, forgetting the oldest entry when `map` is full. */
function remember(map, key, value, limit) {
  if (map.size >= limit) map.delete(map.keys().next().value)
  map.set(key, value)
}

function anySubscribed(channels) {
  for (let i = 0; i < channels.length; i++) if (channels[i].hasSubscribers) return true
  return false
}

/** Raw header lists as undici hands them over: Buffers, names and values alternating. */
function rawOf(flat) {
  const out = new Array(flat.length)
  for (let i = 0; i < flat.length; i++) out[i] = Buffer.from(flat[i], 'latin1')
  return out
}

/** The reason phrase: HTTP/2 and HTTP/3 have none; core keeps no HTTP/1.1 one, so the standard one. */
function statusText(status, version) {
  return version === '1.1' || version === '1.0' ? STATUS_CODES[status] ?? '' : ''
}

/** A peer address as Node's `socket.address()` gives one; `null` when unknown. */
function addressInfo(address, port) {
  if (address === undefined || address === null) return null
  return { address, port, family: isIP(address) === 6 ? 'IPv6' : 'IPv4' }
}

/** The ALPN id of a protocol, for a connection that negotiated none (h2c: `h2`). */
function alpnOf(protocol) {
  return protocol === 'http2' ? 'h2' : protocol === 'http3' ? 'h3' : protocol === 'http1' ? 'http/1.1' : null
}

/** undici's `version` for a protocol: `h1`, `h2`, `h3`; undefined while unknown. */
function versionOf(protocol) {
  return protocol === 'http1' ? 'h1' : protocol === 'http2' ? 'h2' : protocol === 'http3' ? 'h3' : undefined
}

/** undici's `connectParams`, from an origin (`https://example.com:8443`). */
function connectParams(origin, protocol) {
  let url
  try {
    url = new URL(origin)
  } catch {
    return { host: origin, hostname: origin, protocol: undefined, port: '', version: versionOf(protocol), servername: null, localAddress: null }
  }
  let hostname = url.hostname
  if (hostname.startsWith('[')) hostname = hostname.slice(1, -1)
  return {
    host: url.host,
    hostname,
    protocol: url.protocol,
    port: url.port,
    version: versionOf(protocol),
    servername: url.protocol === 'https:' && isIP(hostname) === 0 ? hostname : null,
    localAddress: null,
  }
}

/**
 * The request object of undici's channels (`undici:request:create` and the others): `origin`,
 * `method`, `path`, `headers` (a flat `[name, value, ...]` list of strings, undici 6+'s shape),
 * `completed`, `aborted` and `addHeader(name, value)`, whose headers are sent. The body, the
 * timeouts and the handler of undici's object are not there.
 */
class DiagnosticsRequest {
  constructor(origin, method, path, headers) {
    this.origin = origin
    this.method = method
    this.path = path
    this.headers = headers
    this.completed = false
    this.aborted = false
    this.upgrade = null
  }

  /** Adds a header to the request (sent with it, when called from `undici:request:create`). */
  addHeader(key, value) {
    if (typeof key !== 'string') throw new TypeError('a header name must be a string')
    if (value === undefined) return this
    if (Array.isArray(value)) {
      for (const v of value) this.headers.push(key, v === null ? '' : String(v))
    } else {
      this.headers.push(key, value === null ? '' : String(value))
    }
    return this
  }
}

module.exports = function diagnostics({ QuiverError, quiverError, timingsOf }) {
  /** Runs a user's callback; what it throws is thrown again on its own turn (never into quiver). */
  function guarded(fn) {
    try {
      fn()
    } catch (e) {
      queueMicrotask(() => {
        throw e
      })
    }
  }

  function errorOf(ev) {
    return new QuiverError(ev.errorCode, ev.errorClass, ev.errorMessage ?? '')
  }

  /** The `quiver:event` message: the common fields, then those of the event's kind. */
  function eventMessage(ev) {
    const m = {
      name: ev.name,
      time: ev.time,
      request: ev.request ?? null,
      connection: ev.connection ?? null,
      stream: ev.stream ?? null,
      origin: ev.origin,
      protocol: ev.protocol ?? null,
    }
    switch (ev.name) {
      case 'request_start':
        m.method = ev.method
        m.url = ev.url
        break
      case 'connection_acquired':
        m.reused = ev.reused
        break
      case 'body_sent':
      case 'response_end':
        m.bytes = ev.bytes
        break
      case 'response_headers':
        m.status = ev.status
        break
      case 'retried':
        m.reason = ev.reason
        break
      case 'redirected':
        m.status = ev.status
        m.location = ev.location
        break
      case 'request_failed':
      case 'connection_failed':
        m.error = errorOf(ev)
        break
      case 'dns_resolved':
        m.addresses = ev.addresses
        break
      case 'connected':
        m.remote = addressInfo(ev.remoteAddress, ev.remotePort)
        break
      case 'tls_done':
        m.alpn = ev.alpn ?? null
        m.resumed = ev.resumed
        break
      case 'connection_closed':
        m.reason = ev.reason
        break
      default:
    }
    return m
  }

  /**
   * One request watched from its start (`undici:request:create`) to its end
   * (`undici:request:trailers`, `quiver:request:timings`) or failure (`undici:request:error`).
   */
  class Watch {
    #observer
    #timings = null
    #done = false

    constructor(observer, request, host, tag) {
      this.#observer = observer
      this.request = request
      this.host = host
      this.tag = tag
      this.id = null
    }

    /**
     * The headers to send: the request's, with what subscribers added (`addHeader`, or pushed
     * onto `request.headers` as older instrumentation does: values made strings, arrays spread).
     */
    headers() {
      const h = this.request.headers
      if (h.every((v) => typeof v === 'string')) return h
      const out = []
      for (let i = 0; i + 1 < h.length; i += 2) {
        const value = h[i + 1]
        for (const v of Array.isArray(value) ? value : [value]) out.push(String(h[i]), v === null || v === undefined ? '' : String(v))
      }
      return out
    }

    /** The response head arrived: `undici:request:headers`. */
    responded(res) {
      // Core builds events for this request only when it has a tag.
      if (this.tag !== null) this.#observer.drain()
      if (undici.headers.hasSubscribers || quiver.timings.hasSubscribers) this.#timings = res.timings()
      if (undici.headers.hasSubscribers) {
        const status = res.status
        const response = { statusCode: status, statusText: statusText(status, res.version), headers: rawOf(res.headers()) }
        undici.headers.publish({ request: this.request, response })
      }
    }

    /** The request failed before its head: `undici:request:error`. */
    failed(error) {
      if (this.#done) return
      this.#done = true
      if (this.tag !== null) this.#observer.drain()
      this.request.aborted = true
      if (undici.error.hasSubscribers) undici.error.publish({ request: this.request, error })
      this.#observer.forget(this)
    }

    /**
     * The body ended: cleanly (`undici:request:trailers`, then `quiver:request:timings`) or not
     * (`undici:request:error`: the body's error; the signal's reason when it was aborted; a
     * `cancelled` QuiverError when the body was cancelled).
     */
    ended(clean, error, trailers, signal) {
      if (this.#done) return
      this.#done = true
      if (this.tag !== null) this.#observer.drain()
      if (clean) {
        this.request.completed = true
        if (undici.trailers.hasSubscribers) undici.trailers.publish({ request: this.request, trailers: rawOf(trailers ?? []) })
        if (quiver.timings.hasSubscribers && this.#timings !== null) {
          quiver.timings.publish({ request: this.request, id: this.id, timings: timingsOf(this.#timings) })
        }
      } else {
        this.request.aborted = true
        const err = signal?.aborted ? signal.reason : error ?? quiverError('cancelled', 'the response body was cancelled')
        if (undici.error.hasSubscribers) undici.error.publish({ request: this.request, error: err })
      }
      this.#observer.forget(this)
    }
  }

  /**
   * A client's observer: decides whether its requests are watched and whether core builds
   * events, takes core's events and publishes them.
   */
  class Observer {
    #native = null
    #wanted = false
    #agent = null
    #draining = false
    #nextTag = 0
    /** Watched requests whose `request_start` has not arrived, by tag. */
    #pending = new Map()
    /** Watched requests by core's request id. */
    #requests = new Map()
    /** What the events of each connection told so far, by connection id. */
    #connections = new Map()

    attach(nativeClient) {
      this.#native = nativeClient
    }

    /** Also delivers the connection events to `agent` (`connect`, `disconnect`, `connectionError`). */
    follow(agent) {
      this.#agent = agent
      // Told at once when a listener comes; a listener that goes is noticed as requests start.
      agent.on('newListener', (name) => {
        if (AGENT_EVENTS.includes(name) && !this.#wanted) {
          this.#wanted = true
          this.#native?.setEventsWanted(true)
        }
      })
    }

    #agentListening() {
      const a = this.#agent
      if (a === null) return false
      for (const name of AGENT_EVENTS) if (a.listenerCount(name) > 0) return true
      return false
    }

    /** Tells core whether to build events; true when something consumes them. */
    #update() {
      const wanted = anySubscribed(FROM_CORE) || this.#agentListening()
      if (wanted !== this.#wanted && this.#native !== null) {
        this.#wanted = wanted
        this.#native.setEventsWanted(wanted)
      }
      return wanted
    }

    /**
     * A request starts: `null` when nobody listens, else its watch, `undici:request:create`
     * published (subscribers may add headers: send `watch.headers()`).
     */
    start(href, method, flat) {
      const fromCore = this.#update()
      if (!fromCore && !anySubscribed(FROM_JS)) return null
      let url
      try {
        url = new URL(href)
      } catch {
        return null // core rejects it (invalid_url)
      }
      const request = new DiagnosticsRequest(url.origin, method, url.pathname + url.search, flat)
      // Tagged when core builds events: its `request_start` carries the tag, matching the
      // request to core's id.
      let tag = null
      if (fromCore) {
        this.#nextTag = (this.#nextTag + 1) >>> 0
        tag = this.#nextTag
      }
      const watch = new Watch(this, request, url.host, tag)
      if (tag !== null) remember(this.#pending, tag, watch, REQUESTS_LIMIT)
      if (undici.create.hasSubscribers) undici.create.publish({ request })
      return watch
    }

    forget(watch) {
      if (watch.tag !== null) this.#pending.delete(watch.tag)
      if (watch.id !== null) this.#requests.delete(watch.id)
    }

    /** Takes every event waiting in the native queue and publishes it. */
    drain() {
      if (this.#draining || this.#native === null) return
      this.#draining = true
      try {
        // One take: it re-arms the wake-up, so what arrives meanwhile comes with the next one.
        for (const ev of this.#native.takeEvents().events) this.#dispatch(ev)
      } finally {
        this.#draining = false
      }
      this.#update()
    }

    #watchOf(ev) {
      if (ev.name === 'request_start' && ev.tag !== undefined && ev.tag !== null) {
        const w = this.#pending.get(ev.tag)
        if (w !== undefined) {
          this.#pending.delete(ev.tag)
          w.id = ev.request
          remember(this.#requests, ev.request, w, REQUESTS_LIMIT)
          return w
        }
      }
      return this.#requests.get(ev.request) ?? null
    }

    #connection(ev) {
      const id = ev.connection
      if (id === undefined || id === null) return null
      let c = this.#connections.get(id)
      if (c === undefined) {
        c = { id, origin: ev.origin, protocol: ev.protocol ?? null, remote: null, alpn: null, resumed: false }
        remember(this.#connections, id, c, CONNECTIONS_LIMIT)
        if (undici.beforeConnect.hasSubscribers) {
          undici.beforeConnect.publish({ connectParams: connectParams(c.origin, c.protocol), connector: undefined })
        }
      }
      if (ev.protocol !== undefined && ev.protocol !== null && ev.protocol !== 'auto') c.protocol = ev.protocol
      return c
    }

    /** The stand-in for undici's socket: a plain object, not a `net.Socket`. */
    #socket(c, protocol) {
      return {
        remoteAddress: c?.remote?.address,
        remotePort: c?.remote?.port,
        remoteFamily: c?.remote?.family,
        alpnProtocol: c?.alpn ?? alpnOf(protocol ?? c?.protocol) ?? false,
        encrypted: c === null ? undefined : c.origin.startsWith('https:'),
        connection: c?.id ?? null,
      }
    }

    #emitAgent(name, c, error) {
      const agent = this.#agent
      if (agent === null || agent.listenerCount(name) === 0) return
      let origin
      try {
        origin = new URL(c.origin)
      } catch {
        origin = c.origin
      }
      guarded(() => (error === undefined ? agent.emit(name, origin, [agent]) : agent.emit(name, origin, [agent], error)))
    }

    #dispatch(ev) {
      const watch = ev.request === undefined || ev.request === null ? null : this.#watchOf(ev)
      // Before `quiver:event`: the first event of a connection publishes `beforeConnect`.
      const c = watch === null && DIALING.has(ev.name) ? this.#connection(ev) : null
      if (quiver.event.hasSubscribers) quiver.event.publish(eventMessage(ev))
      switch (ev.name) {
        case 'headers_sent':
          if (watch !== null && undici.sendHeaders.hasSubscribers) {
            const c = this.#connections.get(ev.connection) ?? null
            undici.sendHeaders.publish({ request: watch.request, headers: headerBlock(watch, ev.protocol), socket: this.#socket(c, ev.protocol) })
          }
          break
        case 'body_sent':
          if (watch !== null && undici.bodySent.hasSubscribers) undici.bodySent.publish({ request: watch.request })
          break
        case 'retried':
          if (quiver.retried.hasSubscribers) {
            quiver.retried.publish({ request: watch?.request ?? null, id: ev.request, reason: ev.reason, connection: ev.connection ?? null, time: ev.time })
          }
          break
        case 'redirected':
          if (quiver.redirected.hasSubscribers) {
            quiver.redirected.publish({ request: watch?.request ?? null, id: ev.request, statusCode: ev.status, location: ev.location, time: ev.time })
          }
          break
        case 'connected':
          if (c !== null) c.remote = addressInfo(ev.remoteAddress, ev.remotePort)
          break
        case 'tls_done': {
          if (c !== null) {
            c.alpn = ev.alpn ?? null
            c.resumed = ev.resumed === true
          }
          if (quiver.tls.hasSubscribers) {
            quiver.tls.publish({ connection: ev.connection ?? null, origin: ev.origin, alpn: ev.alpn ?? null, resumed: ev.resumed === true, time: ev.time })
          }
          break
        }
        case 'connection_opened': {
          if (c === null) break
          if (undici.connected.hasSubscribers) {
            undici.connected.publish({ connectParams: connectParams(c.origin, c.protocol), connector: undefined, socket: this.#socket(c) })
          }
          if (quiver.opened.hasSubscribers) {
            quiver.opened.publish({
              connection: c.id, origin: c.origin, protocol: c.protocol, remote: c.remote, alpn: c.alpn, resumed: c.resumed, time: ev.time,
            })
          }
          this.#emitAgent('connect', c)
          break
        }
        case 'connection_failed': {
          const error = errorOf(ev)
          if (undici.connectError.hasSubscribers) {
            undici.connectError.publish({
              connectParams: connectParams(ev.origin, ev.protocol), connector: undefined, error, socket: this.#socket(c),
            })
          }
          if (c !== null) {
            this.#emitAgent('connectionError', c, error)
            this.#connections.delete(c.id)
          }
          break
        }
        case 'goaway':
          if (quiver.goaway.hasSubscribers) {
            quiver.goaway.publish({ connection: ev.connection ?? null, origin: ev.origin, protocol: ev.protocol ?? null, time: ev.time })
          }
          break
        case 'connection_closed': {
          const known = this.#connections.get(ev.connection) ?? { id: ev.connection, origin: ev.origin, protocol: ev.protocol ?? null }
          if (quiver.closed.hasSubscribers) {
            quiver.closed.publish({ connection: ev.connection ?? null, origin: ev.origin, protocol: ev.protocol ?? known.protocol, reason: ev.reason, time: ev.time })
          }
          if (this.#agent !== null && this.#agent.listenerCount('disconnect') > 0) {
            const error = quiverError('connection_closed', `the connection closed: ${ev.reason}`)
            error.reason = ev.reason
            this.#emitAgent('disconnect', known, error)
          }
          this.#connections.delete(ev.connection)
          break
        }
        case 'response_end':
        case 'request_failed':
          // The watch publishes the end itself (it holds what it needs); the id is done.
          if (watch !== null) this.#requests.delete(ev.request)
          break
        default:
      }
    }
  }

  /**
   * undici's `headers` of `undici:client:sendHeaders`: the request head as text (HTTP/1.1: the
   * request line and `host`; HTTP/2 and HTTP/3: the pseudo-headers), then the request's headers.
   * Headers quiver adds itself (`accept-encoding`, cookies, credentials, `content-length`) are
   * not in it.
   */
  function headerBlock(watch, protocol) {
    const r = watch.request
    let out
    if (protocol === 'http2' || protocol === 'http3') {
      out = `:method: ${r.method}\r\n:scheme: ${r.origin.slice(0, r.origin.indexOf(':'))}\r\n:authority: ${watch.host}\r\n:path: ${r.path}\r\n`
    } else {
      out = `${r.method} ${r.path} HTTP/1.1\r\nhost: ${watch.host}\r\n`
    }
    const h = r.headers
    for (let i = 0; i + 1 < h.length; i += 2) out += `${h[i]}: ${h[i + 1]}\r\n`
    return out
  }

  return { Observer }
}

module.exports.channels = { undici, quiver }
module.exports.rawOf = rawOf
module.exports.statusText = statusText
module.exports.addressInfo = addressInfo
