#!/usr/bin/env python3
"""Record what a client sends: a loopback proxy in front of a running
`semantic serve` that saves every request (method, path, headers minus
credentials, JSON body) as a numbered file and passes it on, streaming the
answer back unchanged.

Used to make the request fixtures of the client tests (e.g. the recorded
Claude Code bodies under crates/semantic-server/tests/fixtures/): point the
client at the proxy, run it, then strip anything personal from the files.

    scripts/record-client-requests.py --upstream http://127.0.0.1:8080 \
        --port 8099 --out /tmp/recorded
"""

import argparse
import http.client
import json
import threading
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

# Headers that carry credentials are never written down.
SECRET_HEADERS = {"authorization", "x-api-key", "cookie"}
# Hop-by-hop headers are the proxy's own business, not the client's.
HOP_HEADERS = {"connection", "keep-alive", "transfer-encoding", "content-length", "host"}


def make_handler(upstream: urllib.parse.ParseResult, out: Path):
    counter = iter(range(1, 1 << 30))
    lock = threading.Lock()

    class Recorder(BaseHTTPRequestHandler):
        # HTTP/1.0 towards the client: the answer ends when the connection
        # closes, so a streamed body needs no re-chunking.
        protocol_version = "HTTP/1.0"

        def _record(self, body: bytes) -> None:
            with lock:
                n = next(counter)
            headers = {
                k.lower(): v for k, v in self.headers.items()
                if k.lower() not in SECRET_HEADERS | HOP_HEADERS
            }
            try:
                parsed = json.loads(body) if body else None
            except ValueError:
                parsed = body.decode(errors="replace")
            entry = {"method": self.command, "path": self.path, "headers": headers, "body": parsed}
            name = f"{n:03d}-{self.command.lower()}-{self.path.split('?')[0].strip('/').replace('/', '_')}.json"
            (out / name).write_text(json.dumps(entry, indent=1, ensure_ascii=False) + "\n")

        def _forward(self) -> None:
            length = int(self.headers.get("content-length") or 0)
            body = self.rfile.read(length) if length else b""
            self._record(body)
            conn = http.client.HTTPConnection(upstream.hostname, upstream.port, timeout=900)
            headers = {k: v for k, v in self.headers.items() if k.lower() not in HOP_HEADERS}
            conn.request(self.command, self.path, body=body or None, headers=headers)
            answer = conn.getresponse()
            self.send_response(answer.status)
            for k, v in answer.getheaders():
                if k.lower() not in HOP_HEADERS:
                    self.send_header(k, v)
            self.end_headers()
            while piece := answer.read1(65536):
                self.wfile.write(piece)
                self.wfile.flush()
            conn.close()

        do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = _forward

        def log_message(self, fmt, *args):
            print(f"{self.command} {self.path} -> {fmt % args}", flush=True)

    return Recorder


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--upstream", required=True, help="the server, e.g. http://127.0.0.1:8080")
    parser.add_argument("--port", type=int, required=True, help="loopback port to listen on")
    parser.add_argument("--out", type=Path, required=True, help="folder for the recorded requests")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    upstream = urllib.parse.urlparse(args.upstream)
    server = ThreadingHTTPServer(("127.0.0.1", args.port), make_handler(upstream, args.out))
    print(f"recording into {args.out}, forwarding to {args.upstream}", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
