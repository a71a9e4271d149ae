"""Shared by every flow script: records the HTTP traffic of the opsml client and prints one
JSON result on stdout.

A flow is a small program that uses the real opsml 2.2.4 client against the server named by
``OPSML_TRACKING_URI`` (read by opsml at import time, hence one process per flow). It must
``import common`` *before* importing opsml, then call ``common.main(run)`` where ``run()``
returns a JSON-serialisable dict of observed values. The last line of stdout is then

    {"ok": true, "result": {...}, "requests": [...]}
or  {"ok": false, "error": "...", "traceback": "...", "requests": [...]}

``requests`` lists every request the client made: method, route (path after ``/opsml/``),
query, status and, for requests that did not get a 200, the request body (so a test can name a
missing route and say what the client sent to it).
"""

from __future__ import annotations

import json
import os
import sys
import traceback
from typing import Any, Callable, Dict, List

import httpx

REQUESTS: List[Dict[str, Any]] = []
_PREFIX = "/opsml/"
_original_send = httpx.Client.send


def _recording_send(self: httpx.Client, request: httpx.Request, *args: Any, **kwargs: Any) -> httpx.Response:
    response = _original_send(self, request, *args, **kwargs)
    path = request.url.path
    entry: Dict[str, Any] = {
        "method": request.method,
        "route": path[len(_PREFIX):] if path.startswith(_PREFIX) else path,
        "query": request.url.query.decode() if isinstance(request.url.query, bytes) else str(request.url.query),
        "status": response.status_code,
    }
    if response.status_code != 200:
        try:
            content = request.content
        except httpx.RequestNotRead:  # a streamed upload: the body is gone
            content = b"<streamed>"
        entry["request_body"] = content[:2000].decode("utf-8", "replace")
        if not response.is_stream_consumed and not kwargs.get("stream"):
            entry["response_body"] = response.text[:500]
    REQUESTS.append(entry)
    return response


httpx.Client.send = _recording_send  # type: ignore[method-assign]


def main(run: Callable[[], Dict[str, Any]]) -> None:
    """Runs ``run`` and prints its result (or its error) as the last line of stdout."""
    try:
        result = run()
        out: Dict[str, Any] = {"ok": True, "result": result}
    except BaseException as exc:  # noqa: BLE001 - every failure is reported to the test
        out = {
            "ok": False,
            "error": f"{type(exc).__name__}: {exc}",
            "traceback": traceback.format_exc(),
        }
    out["requests"] = REQUESTS
    sys.stdout.flush()
    print("\n" + json.dumps(out, default=str))
    sys.stdout.flush()
    # Skip interpreter teardown (thread pools of sklearn/pyarrow): the result is printed.
    os._exit(0)


def versions(cards: List[Dict[str, Any]]) -> List[str]:
    """The ``version`` of each card record, in order."""
    return [c["version"] for c in cards]
