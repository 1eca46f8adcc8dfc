"""colorize-serve: a real uvicorn server on a free localhost port, asked by a real HTTP client."""

from __future__ import annotations

import io
import json
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
import uuid

import numpy as np
import pytest
from PIL import Image

from backends import color
from tests.venvs import PROJECT, clean_env

PLUGIN = '''
import time
import numpy as np
from backends import MethodInfo, Option, PluginColorizer

class Slow(PluginColorizer):
    method_info = MethodInfo("slow_tint", "a constant warm tint after a pause (test method)",
                             options=(Option("pause", "float", 0.0, 0.0, 5.0),))

    def predict_ab(self, L, reference=None):
        time.sleep(self.options["pause"])
        return np.stack([np.full_like(L, 20.0), np.full_like(L, 30.0)], axis=1)
'''


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("serve")
    (tmp / "slow_tint.py").write_text(PLUGIN)
    port = free_port()
    env = clean_env(PYTHONPATH=str(PROJECT), COLORIZE_METHODS=str(tmp / "slow_tint.py"), TORCH_HOME=str(tmp / "torch"),
                    COLORIZE_WEIGHTS_DIR=str(tmp / "none"))  # fmt: skip
    log = open(tmp / "server.log", "w")  # noqa: SIM115
    proc = subprocess.Popen([sys.executable, "-m", "experiments.serve", "--port", str(port), "--device", "cpu", "--max-mb", "0.25",
                             "--concurrency", "1", "--queue", "0"], cwd=tmp, env=env, stdout=log, stderr=subprocess.STDOUT)  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    for _ in range(600):
        try:
            urllib.request.urlopen(base + "/health", timeout=1)
            break
        except OSError:
            if proc.poll() is not None:
                raise RuntimeError((tmp / "server.log").read_text()) from None
            time.sleep(0.1)
    yield base
    proc.terminate()
    proc.wait(timeout=20)
    log.close()


def png(h=36, w=44, seed=0) -> bytes:
    rgb = (np.random.default_rng(seed).random((h, w, 3)) * 255).astype(np.uint8)
    buf = io.BytesIO()
    Image.fromarray(rgb).save(buf, format="PNG")
    return buf.getvalue()


def call(url, data=None, headers=None):
    """(status, content type, body, headers) of one request."""
    req = urllib.request.Request(url, data=data, headers=headers or {}, method="POST" if data is not None else "GET")
    try:
        with urllib.request.urlopen(req, timeout=120) as r:
            return r.status, r.headers.get("Content-Type"), r.read(), r.headers
    except urllib.error.HTTPError as e:
        return e.code, e.headers.get("Content-Type"), e.read(), e.headers


def multipart(**files: bytes) -> tuple[bytes, dict]:
    boundary = uuid.uuid4().hex
    body = b""
    for field, content in files.items():
        body += (f"--{boundary}\r\nContent-Disposition: form-data; name=\"{field}\"; filename=\"{field}.png\"\r\n"
                 "Content-Type: image/png\r\n\r\n").encode() + content + b"\r\n"  # fmt: skip
    return body + f"--{boundary}--\r\n".encode(), {"Content-Type": f"multipart/form-data; boundary={boundary}"}


def test_methods_lists_every_method_with_its_declaration_and_status(server):
    status, ctype, body, _ = call(server + "/methods")
    assert status == 200 and ctype == "application/json"
    methods = {m["name"]: m for m in json.loads(body)["methods"]}
    assert {"regression", "classification", "fusion", "gan", "neural_style", "zhang_eccv16", "slow_tint"} <= set(methods)
    assert methods["classification"]["options"][0]["name"] == "temperature"
    assert methods["slow_tint"]["available"] and methods["slow_tint"]["source"] == "COLORIZE_METHODS"
    assert not methods["zhang_eccv16"]["available"] and "COLORIZE_ZHANG_ECCV16" in methods["zhang_eccv16"]["status"]


def test_colorize_raw_body_and_multipart_return_a_png_of_the_input_size(server):
    for data, headers in ((png(), {"Content-Type": "image/png"}), multipart(image=png())):
        status, ctype, body, h = call(server + "/colorize?method=slow_tint", data, headers)
        assert status == 200 and ctype == "image/png", body[:300]
        out = np.asarray(Image.open(io.BytesIO(body)))
        assert out.shape == (36, 44, 3) and h["X-Method"] == "slow_tint" and h["X-Device"] == "cpu"
        lab = color.rgb_to_lab(out)
        assert np.median(lab[..., 1]) > 10  # the method's tint, not the input's colours
    # a shipped model too
    status, ctype, body, _ = call(server + "/colorize?method=gan", png(), {"Content-Type": "image/png"})
    assert status == 200 and np.asarray(Image.open(io.BytesIO(body))).shape == (36, 44, 3)


@pytest.mark.parametrize(
    ("query", "data", "status", "code"),
    [
        ("method=nope", png(), 404, "unknown_method"),
        ("", png(), 400, "unknown_method"),
        ("method=slow_tint&pause=9", png(), 400, "bad_option"),
        ("method=slow_tint&colour=red", png(), 400, "bad_option"),
        ("method=slow_tint", b"this is not an image", 400, "bad_image"),
        ("method=slow_tint", png()[:200], 400, "bad_image"),
        ("method=slow_tint", b"", 400, "no_image"),
        ("method=slow_tint", b"\0" * 300_000, 413, "too_large"),
        ("method=zhang_eccv16", png(), 503, "method_unavailable"),
    ],
)
def test_named_json_errors(server, query, data, status, code):
    got, ctype, body, _ = call(f"{server}/colorize?{query}", data, {"Content-Type": "application/octet-stream"})
    assert got == status and ctype == "application/json", body[:300]
    err = json.loads(body)
    assert err["error"] == code and err["message"] and "\n" not in err["message"]


def test_more_requests_than_the_limits_are_turned_away_busy(server):
    results = []

    def one():
        results.append(call(server + "/colorize?method=slow_tint&pause=1.5", png(), {"Content-Type": "image/png"}))

    threads = [threading.Thread(target=one) for _ in range(3)]
    for t in threads:
        t.start()
        time.sleep(0.2)
    for t in threads:
        t.join()
    codes = sorted(r[0] for r in results)
    assert codes == [200, 429, 429], codes
    busy = next(r for r in results if r[0] == 429)
    assert json.loads(busy[2])["error"] == "busy" and busy[3]["Retry-After"] == "1"


def test_the_container_healthcheck_sees_the_api(server):
    ok = subprocess.run([sys.executable, "-m", "experiments.healthcheck"], cwd=PROJECT, capture_output=True, text=True,
                        env=clean_env(PYTHONPATH=str(PROJECT), COLORIZE_HEALTH_URLS=server + "/health"))  # fmt: skip
    assert ok.returncode == 0, ok.stderr
    down = subprocess.run([sys.executable, "-m", "experiments.healthcheck"], cwd=PROJECT, capture_output=True, text=True,
                          env=clean_env(PYTHONPATH=str(PROJECT), COLORIZE_HEALTH_URLS=f"http://127.0.0.1:{free_port()}/health"))  # fmt: skip
    assert down.returncode == 1 and "unhealthy" in down.stderr
