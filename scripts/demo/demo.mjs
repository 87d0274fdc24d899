// `make demo`, Node part: fetches from the loopback test server through quiver-http.
import { Client, QuiverError } from '../../bindings/node/index.mjs';

const server = JSON.parse(process.argv[2]);
const https = `https://localhost:${server.https}`;
const http = `http://127.0.0.1:${server.http}`;

const client = new Client({ caFile: server.ca_file });
const res = await client.request(`${https}/echo`, { method: 'POST', body: 'hello from node' });
console.log(`POST ${https}/echo -> ${res.statusCode} HTTP/${res.httpVersion} ${JSON.stringify(await res.body.text())}`);

const big = await client.request(`${http}/bytes/300000`);
let n = 0;
for await (const chunk of big.body) n += chunk.length;
console.log(`GET ${http}/bytes/300000 (for await) -> ${n} bytes`);

try {
  await client.request(`${http}/slow/3000`, { signal: AbortSignal.timeout(200) });
} catch (e) {
  console.log(`GET /slow/3000 aborted after 200 ms -> ${e instanceof QuiverError ? `QuiverError code=${e.code} class=${e.class}` : e}`);
}
await client.close();
