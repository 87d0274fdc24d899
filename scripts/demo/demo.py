"""`make demo`, Python part: fetches from the loopback test server through quiver-http."""
import asyncio
import json
import sys

import quiver

server = json.loads(sys.argv[1])
http = f"http://127.0.0.1:{server['http']}"
https = f"https://localhost:{server['https']}"
h3 = f"https://localhost:{server['h3']}"

with quiver.Client(ca_file=server["ca_file"]) as client:
    r = client.get(f"{https}/headers", headers={"x-demo": "python"})
    print(f"GET {https}/headers -> {r.status_code} {r.http_version}, saw x-demo: "
          f"{any(h == ['x-demo', 'python'] for h in r.json()['headers'])}")
    with client.stream("GET", f"{http}/bytes/300000") as r:
        n = sum(len(chunk) for chunk in r.iter_bytes())
    print(f"GET {http}/bytes/300000 (streamed) -> {n} bytes")
    try:
        client.get(f"{http}/slow/3000", timeout=0.2)
    except quiver.TransientError as e:
        print(f"GET /slow/3000 with timeout=0.2 -> {type(e).__name__} kind={e.kind}")


async def main() -> None:
    async with quiver.AsyncClient(ca_file=server["ca_file"], protocol="http3") as client:
        responses = await asyncio.gather(*(client.get(f"{h3}/bytes/{i}") for i in range(50)))
        ok = sum(len(r.content) == i for i, r in enumerate(responses))
        print(f"50 concurrent HTTP/3 GETs with AsyncClient -> {ok} correct "
              f"({responses[0].http_version})")


asyncio.run(main())
