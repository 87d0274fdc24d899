// quiver-http as an ES module: the same objects as the CommonJS entry (index.js).
import quiver from './index.js'

export const {
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
  version,
  __napiBindingTarget,
} = quiver

export default quiver
