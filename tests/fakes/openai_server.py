"""A scriptable OpenAI-compatible server on 127.0.0.1 for tests and benchmarks.

Serves ``POST /v1/chat/completions`` from a thread (stdlib ``ThreadingHTTPServer``, one thread
per connection, HTTP/1.1 keep-alive). Each request is answered by the first script whose marker
occurs in the user message (its steps are consumed in order, the last one repeating), else by
``responder(report_text)``::

    with FakeOpenAIServer(latency_s=0.2) as fake:
        fake.script("report B", status(429, retry_after=1), answer({"findings": []}))
        fake.script("report C", hang(5))
        ... OPENAI_BASE_URL = fake.base_url ...
        assert fake.calls == 3

``FakeOpenAIProcess`` runs the same server (default answers only) in a child process, for
benchmarks: in-process, the server's threads would compete with the client for the GIL.
"""

from __future__ import annotations

import argparse
import json
import re
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

REPORT_RE = re.compile(r"<(report-[0-9a-f]+)>\n(.*)\n</\1>", re.DOTALL)


@dataclass(frozen=True)
class Step:
    """One scripted reply: ``answer`` (200 + content), ``status`` or ``hang``."""

    kind: str
    content: str = ""
    status: int = 200
    headers: dict = field(default_factory=dict)
    seconds: float = 0.0


def answer(content: dict | str) -> Step:
    """A 200 whose message content is ``content`` (a dict is JSON-encoded)."""
    return Step("answer", content=content if isinstance(content, str) else json.dumps(content))


def invalid_json() -> Step:
    return Step("answer", content='{"findings": [{"category": "edema", "presence": ')


def status(code: int, *, retry_after: float | str | None = None) -> Step:
    headers = {} if retry_after is None else {"Retry-After": str(retry_after)}
    return Step("status", status=code, headers=headers)


def hang(seconds: float = 30.0) -> Step:
    """Hold the request open (until the server stops), then answer with no finding."""
    return Step("hang", content=json.dumps({"findings": []}), seconds=seconds)


def report_text(user_message: str) -> str:
    """The report inside the extractor's ``<report-CODE>`` delimiters (or the whole message)."""
    m = REPORT_RE.search(user_message)
    return m.group(2) if m else user_message


KEYWORDS = {"effusion": "pleural_effusion", "pneumothorax": "pneumothorax", "edema": "edema",
            "cardiomegaly": "cardiomegaly", "atelectasis": "atelectasis", "nodule": "nodule",
            "consolidation": "consolidation", "pneumonia": "pneumonia"}
NEGATIONS = re.compile(r"\b(?:no|without|negative for)\b", re.IGNORECASE)


def keyword_responder(text: str) -> dict:
    """A plausible answer: one finding per sentence naming a KEYWORDS term, quoted verbatim."""
    findings = []
    for sentence in re.split(r"(?<=\.)\s+", text):
        for word, category in KEYWORDS.items():
            if word in sentence.lower():
                presence = "absent" if NEGATIONS.search(sentence) else "present"
                findings.append({"category": category, "presence": presence, "severity": None,
                                 "side": None, "region": None, "evidence": sentence.strip()})
    return {"findings": findings}


class _Server(ThreadingHTTPServer):
    request_queue_size = 128  # the default listen backlog (5) drops bursts of new connections
    daemon_threads = True


class FakeOpenAIServer:
    def __init__(self, *, latency_s: float = 0.0,
                 responder: Callable[[str], dict | str] = keyword_responder) -> None:
        self.latency_s = latency_s  # added to every reply, as a remote model would
        self.responder = responder
        self.calls = 0  # POST /v1/chat/completions received
        self.requests: list[dict] = []  # their JSON bodies
        self.auth_headers: list[str] = []
        self.times: list[float] = []  # time.monotonic() of each request's arrival
        self._scripts: list[tuple[str, list[Step]]] = []
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._httpd = _Server(("127.0.0.1", 0), self._handler_class())
        self._thread = threading.Thread(target=self._httpd.serve_forever, args=(0.05,),
                                        daemon=True)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self._httpd.server_address[1]}/v1"

    def script(self, marker: str, *steps: Step) -> None:
        """Answer requests whose user message contains ``marker`` with ``steps``, in order."""
        with self._lock:
            self._scripts.append((marker, list(steps)))

    def start(self) -> FakeOpenAIServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stopping.set()  # releases hanging handlers
        self._httpd.shutdown()
        self._httpd.server_close()

    def __enter__(self) -> FakeOpenAIServer:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    def _next_step(self, user: str) -> Step:
        with self._lock:
            self.calls += 1
            for marker, steps in self._scripts:
                if marker in user:
                    return steps.pop(0) if len(steps) > 1 else steps[0]
        reply = self.responder(report_text(user))
        return answer(reply)

    def _record(self, body: dict, auth: str) -> str:
        with self._lock:
            self.requests.append(body)
            self.times.append(time.monotonic())
            self.auth_headers.append(auth)
        users = [m.get("content", "") for m in body.get("messages", []) if m.get("role") == "user"]
        return users[-1] if users else ""

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def setup(self) -> None:
                super().setup()
                # headers and body go out as two writes: without NODELAY, Nagle's algorithm and
                # the client's delayed ACK add ~40 ms to every reply
                self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

            def log_message(self, *args) -> None:  # keep test output quiet
                pass

            def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
                if self.path.rstrip("/") == "/_stats":  # for FakeOpenAIProcess.calls
                    return self._send(200, {"calls": fake.calls})
                self._send(404, {"error": {"message": "not found"}})

            def do_POST(self) -> None:  # noqa: N802
                body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))))
                if self.path.rstrip("/") != "/v1/chat/completions":
                    return self._send(404, {"error": {"message": "not found"}})
                user = fake._record(body, self.headers.get("Authorization", ""))
                step = fake._next_step(user)
                time.sleep(fake.latency_s)
                if step.kind == "hang" and fake._stopping.wait(step.seconds):
                    return
                if step.kind == "status":
                    err = {"error": {"message": f"scripted {step.status}", "type": "fake"}}
                    return self._send(step.status, err, step.headers)
                self._send(200, fake_completion(body, step.content))

            def _send(self, code: int, payload: dict, headers: dict | None = None) -> None:
                data = json.dumps(payload).encode()
                try:
                    self.send_response(code)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(data)))
                    for k, v in (headers or {}).items():
                        self.send_header(k, v)
                    self.end_headers()
                    self.wfile.write(data)
                except (BrokenPipeError, ConnectionResetError):  # the client gave up (timeout)
                    pass

        return Handler


def fake_completion(request: dict, content: str) -> dict:
    """A chat.completion object with usage figures (~4 characters per token)."""
    prompt_chars = sum(len(str(m.get("content", ""))) for m in request.get("messages", []))
    prompt_tokens, completion_tokens = prompt_chars // 4 + 1, len(content) // 4 + 1
    return {
        "id": "chatcmpl-fake", "object": "chat.completion", "created": int(time.time()),
        "model": request.get("model", "fake"),
        "choices": [{"index": 0, "finish_reason": "stop", "logprobs": None,
                     "message": {"role": "assistant", "content": content, "refusal": None}}],
        "usage": {"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens,
                  "total_tokens": prompt_tokens + completion_tokens},
    }


class FakeOpenAIProcess:
    """The fake server in a child process (``python -m tests.fakes.openai_server``)."""

    def __init__(self, *, latency_s: float = 0.0) -> None:
        self.latency_s = latency_s
        self.base_url = ""
        self._proc: subprocess.Popen | None = None

    def __enter__(self) -> FakeOpenAIProcess:
        root = Path(__file__).resolve().parents[2]
        self._proc = subprocess.Popen(
            [sys.executable, "-m", "tests.fakes.openai_server", "--latency", str(self.latency_s)],
            cwd=root, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        self.base_url = self._proc.stdout.readline().strip()
        if not self.base_url.startswith("http://"):
            self.__exit__()
            raise RuntimeError("fake OpenAI server process did not start")
        return self

    @property
    def calls(self) -> int:
        with urllib.request.urlopen(self.base_url.removesuffix("/v1") + "/_stats") as resp:
            return json.load(resp)["calls"]

    def __exit__(self, *exc) -> None:
        if self._proc is not None:
            self._proc.stdin.close()  # the child serves until its stdin closes
            try:
                self._proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait()


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description="Serve the fake OpenAI API until stdin closes.")
    p.add_argument("--latency", type=float, default=0.0, help="seconds added to every reply")
    args = p.parse_args(argv)
    with FakeOpenAIServer(latency_s=args.latency) as fake:
        print(fake.base_url, flush=True)
        sys.stdin.read()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
