"""ASGI middleware: request header and body size caps, and security headers on every response."""

from __future__ import annotations

import orjson

from serve_app.uploads import MULTIPART_OVERHEAD_BYTES

# POST here streams a file (routes/uploads.py): its body may be up to MAX_UPLOAD_BYTES, not MAX_BODY_BYTES.
UPLOAD_PATHS = ("/uploads", "/v1/uploads")

SECURITY_HEADERS = [
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"no-referrer"),
    (b"cross-origin-opener-policy", b"same-origin"),
    (b"permissions-policy", b"camera=(), microphone=(), geolocation=()"),
]
PAGE_CSP = (
    b"default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    b"connect-src 'self'; font-src 'self'; object-src 'none'; base-uri 'none'; "
    b"form-action 'self'; frame-ancestors 'none'"
)
# Swagger UI and ReDoc load their bundles from a CDN and use inline scripts.
DOCS_CSP = (
    b"default-src 'self'; script-src 'self' 'unsafe-inline' https://cdn.jsdelivr.net; "
    b"style-src 'self' 'unsafe-inline' https://cdn.jsdelivr.net https://fonts.googleapis.com; "
    b"img-src 'self' data: https://fastapi.tiangolo.com https://cdn.redoc.ly; "
    b"font-src 'self' https://fonts.gstatic.com; worker-src 'self' blob:; frame-ancestors 'none'"
)


class SecurityHeadersMiddleware:
    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        path = scope.get("path", "")
        csp = DOCS_CSP if path in ("/docs", "/redoc") else PAGE_CSP

        async def send_with_headers(message):
            if message["type"] == "http.response.start":
                headers = [(k, v) for k, v in message.get("headers", []) if k.lower() != b"server"]
                headers += SECURITY_HEADERS
                headers.append((b"content-security-policy", csp))
                message["headers"] = headers
            await send(message)

        await self.app(scope, receive, send_with_headers)


class RequestSizeLimitMiddleware:
    """Answer 431 for oversized headers and 413 for bodies over the limit (declared or streamed).

    Serve's HTTP proxy accepts headers of any size, so the cap is enforced here. ``POST /uploads``
    (``upload_paths``) alone may send up to ``max_upload_bytes`` plus the multipart framing around the
    file; its route streams the body to the artifact store and enforces the file's own cap
    (serve_app/uploads.py). A declared Content-Length over the cap is refused before any byte of the
    body is read.
    """

    def __init__(self, app, max_body_bytes: int, max_header_bytes: int, max_upload_bytes: int | None = None,
                 upload_paths: tuple[str, ...] = UPLOAD_PATHS):
        self.app = app
        self.max_body_bytes = max_body_bytes
        self.max_header_bytes = max_header_bytes
        self.max_upload_bytes = max_upload_bytes
        self.upload_paths = frozenset(upload_paths)

    def _limit_for(self, scope) -> tuple[int, str]:
        if (self.max_upload_bytes is not None and scope.get("method") == "POST"
                and scope.get("path", "").rstrip("/") in self.upload_paths):
            return (self.max_upload_bytes + MULTIPART_OVERHEAD_BYTES,
                    f"Upload is larger than MAX_UPLOAD_BYTES ({self.max_upload_bytes:,} bytes).")
        return self.max_body_bytes, f"Request body is larger than {self.max_body_bytes} bytes."

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        headers = scope.get("headers", [])
        if sum(len(name) + len(value) + 4 for name, value in headers) > self.max_header_bytes:
            return await _reject(send, 431, f"Request headers are larger than {self.max_header_bytes} bytes.")
        limit, too_large = self._limit_for(scope)
        declared = dict(headers).get(b"content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > limit):
            return await _reject(send, 413, too_large)
        received = 0

        async def limited_receive():
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise BodyTooLarge()
            return message

        try:
            await self.app(scope, limited_receive, send)
        except BodyTooLarge:
            await _reject(send, 413, too_large)


async def _reject(send, status: int, detail: str) -> None:
    body = orjson.dumps({"detail": detail})
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"),
                            (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})


class BodyTooLarge(Exception):
    pass
