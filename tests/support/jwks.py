"""A local OpenID-provider stand-in: serves a JWKS over real HTTP on 127.0.0.1."""

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from jwt.algorithms import ECAlgorithm, RSAAlgorithm


def jwk(public_key, kid: str, alg: str) -> dict:
    algorithm = RSAAlgorithm if alg.startswith("RS") else ECAlgorithm
    entry = algorithm.to_jwk(public_key, as_dict=True)
    entry.update(kid=kid, alg=alg, use="sig")
    return entry


class JwksServer:
    def __init__(self, jwks: dict):
        body = json.dumps(jwks).encode()

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/.well-known/jwks.json"

    def start(self) -> "JwksServer":
        self.thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(5)
