"""Front for fake-gcs-server that accepts object_store's XML-API object PUT.

fake-gcs-server (v1.54) answers `PUT /<bucket>/<object>` with 400 "invalid uploadType".
This proxy turns such a PUT into a JSON-API multipart upload (which honours
ifGenerationMatch) and answers the way GCS's XML API does: 200, empty body, a quoted
ETag and x-goog-generation. Everything else is passed through unchanged.

usage: python3 gcs_xml_proxy.py LISTEN_PORT UPSTREAM_PORT

Used by tests/backends.rs only: real GCS accepts the XML-API PUT; the emulator does not
(fsouza/fake-gcs-server issue #331). Conditional writes (x-goog-if-generation-match) are
mapped to ifGenerationMatch, so the run lease is still tested for conflicts.
"""
import http.client
import json
import sys
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

LISTEN, UPSTREAM = int(sys.argv[1]), int(sys.argv[2])
HOP = {"host", "connection", "keep-alive", "transfer-encoding", "content-length", "date", "server"}


class Proxy(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *a):
        pass

    def _body(self):
        n = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(n) if n else b""

    def _upstream(self, method, path, body, headers):
        c = http.client.HTTPConnection("127.0.0.1", UPSTREAM, timeout=30)
        c.request(method, path, body=body, headers=headers)
        r = c.getresponse()
        data = r.read()
        c.close()
        return r, data

    def _reply(self, status, headers, data, head=False):
        self.send_response(status)
        for k, v in headers:
            if k.lower() not in HOP:
                self.send_header(k, v)
        length = dict((k.lower(), v) for k, v in headers).get("content-length") if head else None
        self.send_header("Content-Length", length or str(len(data)))
        self.end_headers()
        if not head:
            self.wfile.write(data)

    def _forward(self):
        body = self._body()
        hdrs = {k: v for k, v in self.headers.items() if k.lower() not in HOP}
        r, data = self._upstream(self.command, self.path, body, hdrs)
        self._reply(r.status, r.getheaders(), data, head=self.command == "HEAD")

    do_GET = do_HEAD = do_DELETE = do_POST = _forward

    def do_PUT(self):
        u = urllib.parse.urlsplit(self.path)
        q = urllib.parse.parse_qs(u.query)
        parts = u.path.lstrip("/").split("/", 1)
        if len(parts) < 2 or "uploadType" in q or "X-Goog-Algorithm" in q or u.path.startswith("/upload/"):
            return self._forward()
        bucket, name = parts[0], urllib.parse.unquote(parts[1])
        data = self._body()
        ctype = self.headers.get("Content-Type", "application/octet-stream")
        meta = {"name": name, "contentType": ctype}
        meta["metadata"] = {k[len("x-goog-meta-"):]: v for k, v in self.headers.items()
                            if k.lower().startswith("x-goog-meta-")}
        boundary = "xmlproxyboundary7f3a9c"
        body = (f"--{boundary}\r\nContent-Type: application/json\r\n\r\n{json.dumps(meta)}\r\n"
                f"--{boundary}\r\nContent-Type: {ctype}\r\n\r\n").encode() + data + f"\r\n--{boundary}--\r\n".encode()
        query = {"uploadType": "multipart", "name": name}
        gen = self.headers.get("x-goog-if-generation-match")
        if gen is not None:
            query["ifGenerationMatch"] = gen
        path = f"/upload/storage/v1/b/{urllib.parse.quote(bucket, safe='')}/o?" + urllib.parse.urlencode(query)
        r, resp = self._upstream("POST", path, body,
                                 {"Content-Type": f"multipart/related; boundary={boundary}"})
        if r.status != 200:
            return self._reply(r.status, [("Content-Type", "application/xml")], resp)
        obj = json.loads(resp)
        self._reply(200, [("ETag", f'"{obj["etag"]}"'), ("x-goog-generation", obj["generation"])], b"")


ThreadingHTTPServer(("127.0.0.1", LISTEN), Proxy).serve_forever()
