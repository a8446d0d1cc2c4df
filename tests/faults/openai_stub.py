"""A misbehaving OpenAI-compatible chat server (stdlib only) for fault tests.

It speaks the real HTTP protocol of ``/v1/chat/completions``, so the whole
client path (langchain-openai, httpx, timeouts) is exercised; only the model
is replaced by a scripted fault: ``malformed`` JSON text, ``out_of_range``
values, an ``empty`` body, a ``slow`` reply, an HTTP ``error``, or ``die``
(the server closes the connection mid-request).
"""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

REPLIES = {
    "malformed": '{"analyses": ["profile", ',
    "out_of_range": json.dumps({"analyses": ["teleport"], "accept": "maybe",
                                "ranking": [-1], "calls": [], "proposals": [],
                                "routes": {}}),
    "empty": "",
}


class Stub:
    def __init__(self, mode: str, delay: float = 0.0) -> None:
        self.mode, self.delay, self.calls = mode, delay, 0
        stub = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *a):  # silence
                pass

            def do_POST(self):  # noqa: N802 - http.server API
                n = int(self.headers.get("Content-Length", 0))
                self.rfile.read(n)
                stub.calls += 1
                if stub.mode == "die":
                    self.connection.close()
                    return
                if stub.mode == "slow":
                    time.sleep(stub.delay)
                if stub.mode == "error":
                    self.send_response(500)
                    self.end_headers()
                    self.wfile.write(b'{"error": "boom"}')
                    return
                content = REPLIES.get(stub.mode, "")
                body = json.dumps({
                    "id": "x", "object": "chat.completion", "created": 0,
                    "model": "stub",
                    "choices": [{"index": 0, "finish_reason": "stop",
                                 "message": {"role": "assistant", "content": content}}],
                    "usage": {"prompt_tokens": 1, "completion_tokens": 1,
                              "total_tokens": 2},
                }).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                try:
                    self.wfile.write(body)
                except BrokenPipeError:
                    pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/v1"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> Stub:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()
