"""HTTP API: ``colorize-serve`` (``python -m experiments.serve``), Starlette on uvicorn.

    colorize-serve --port 8000                              # localhost only, 1 colorization at a time
    curl --data-binary @photo.jpg -H 'Content-Type: image/jpeg' 'http://localhost:8000/colorize?method=gan' -o out.png
    curl -F image=@photo.jpg 'http://localhost:8000/colorize?method=classification&temperature=0.2' -o out.png
    curl -F image=@photo.jpg -F reference=@colours.jpg 'http://localhost:8000/colorize?method=neural_style' -o out.png
    curl http://localhost:8000/methods

Endpoints:
- ``POST /colorize?method=NAME[&OPTION=VALUE...]``: the image as the request body (any image type)
  or as the ``image`` field of a multipart form (``reference`` for a colour reference photo);
  options are the method's declared ones (``GET /methods``), range-checked. Answers a PNG of the
  input's size and lightness, with ``X-Method``, ``X-Device`` and ``X-Seconds`` headers.
- ``GET /methods``: every registered method with its declaration and whether it can run here.
- ``GET /health``: ``{"status": "ok"}``.

Errors are JSON ``{"error": CODE, "message": ONE_LINE}``: ``unknown_method`` (404),
``method_unavailable`` (503, with the fix), ``bad_option`` (400), ``bad_image`` (400: not an
image, truncated, above ``COLORIZE_MAX_PIXELS``), ``no_image`` (400), ``reference_required`` (400),
``too_large`` (413: body above ``--max-mb``), ``busy`` (429 with ``Retry-After``: more requests
than ``--concurrency`` running plus ``--queue`` waiting), ``failed`` (500).

Models load on first use and stay loaded (one per method, options and device).
"""

from __future__ import annotations

import argparse
import asyncio
import io
import sys
import threading
import time
from dataclasses import dataclass

import numpy as np

import backends
from backends.errors import BackendUnavailable, ColorizationError, ImageError, ReferenceRequired, WeightsUnavailable
from backends.imageio import load_image


@dataclass
class Limits:
    max_bytes: int = 25 * 2**20
    concurrency: int = 1
    queue: int = 4
    device: str = "auto"


class ApiError(Exception):
    def __init__(self, status: int, code: str, message: str):
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


class Models:
    """Loaded models, one per (method, options, device); loading is serialised per key."""

    def __init__(self, device: str):
        self.device = device
        self.models: dict[tuple, object] = {}
        self.lock = threading.Lock()

    def get(self, name: str, options: dict):
        key = (name, tuple(sorted(options.items())), self.device)
        with self.lock:
            if key not in self.models:
                self.models[key] = backends.load(name, device=self.device, **options)
            return self.models[key]


def method_options(name: str, query) -> dict:
    """Query parameters besides ``method`` -> the method's declared options (coerced, in range)."""
    info = backends.describe(name)
    out = {}
    for k, v in query.items():
        if k == "method":
            continue
        o = info.option(k)
        if o is None:
            known = ", ".join(x.name for x in info.options) or "none"
            raise ApiError(400, "bad_option", f"{name} has no option {k!r} (its options: {known})")
        try:
            out[k] = o.coerce(v, name)
        except ValueError as exc:
            raise ApiError(400, "bad_option", str(exc)) from None
    return out


def png(rgb: np.ndarray) -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(np.asarray(rgb, np.uint8)).save(buf, format="PNG")
    return buf.getvalue()


def create_app(limits: Limits | None = None):
    """The Starlette application (``uvicorn.run(create_app())``)."""
    from starlette.applications import Starlette
    from starlette.concurrency import run_in_threadpool
    from starlette.requests import Request
    from starlette.responses import JSONResponse, Response
    from starlette.routing import Route

    limits = limits or Limits()
    device = backends.resolve_device(limits.device)
    models = Models(device)
    gate = asyncio.Semaphore(limits.concurrency)
    state = {"admitted": 0}

    def error(exc: ApiError) -> JSONResponse:
        headers = {"Retry-After": "1"} if exc.code == "busy" else None
        return JSONResponse({"error": exc.code, "message": exc.message}, status_code=exc.status, headers=headers)

    async def read_body(request: Request) -> bytes:
        declared = request.headers.get("content-length")
        if declared and declared.isdigit() and int(declared) > limits.max_bytes:
            raise ApiError(413, "too_large", f"request of {int(declared):,} bytes is above the limit of {limits.max_bytes:,} bytes")
        chunks, size = [], 0
        async for chunk in request.stream():
            size += len(chunk)
            if size > limits.max_bytes:
                raise ApiError(413, "too_large", f"request body is above the limit of {limits.max_bytes:,} bytes")
            chunks.append(chunk)
        return b"".join(chunks)

    async def images_of(request: Request) -> tuple[bytes, bytes | None]:
        body = await read_body(request)
        ctype = request.headers.get("content-type", "")
        if ctype.startswith("multipart/form-data"):
            from starlette.datastructures import UploadFile
            from starlette.formparsers import MultiPartParser

            async def replay():
                yield body

            try:
                form = await MultiPartParser(request.headers, replay()).parse()
            except Exception as exc:  # noqa: BLE001 - malformed form
                raise ApiError(400, "bad_image", f"could not read the multipart form ({exc})") from None
            image, ref = form.get("image"), form.get("reference")
            if not isinstance(image, UploadFile):
                raise ApiError(400, "no_image", "the multipart form has no file field 'image'")
            return await image.read(), (await ref.read() if isinstance(ref, UploadFile) else None)
        if not body:
            raise ApiError(400, "no_image", "empty request: send the image as the body or as the form field 'image'")
        return body, None

    async def colorize(request: Request) -> Response:
        try:
            name = request.query_params.get("method")
            if not name:
                raise ApiError(400, "unknown_method", f"give ?method=NAME; known: {', '.join(backends.names())}")
            if name not in backends.METHODS:
                raise ApiError(404, "unknown_method", f"unknown method {name!r}; known: {', '.join(backends.names())}")
            options = method_options(name, request.query_params)
            if state["admitted"] >= limits.concurrency + limits.queue:
                raise ApiError(429, "busy", f"{limits.concurrency} colorization(s) running and {limits.queue} waiting; retry shortly")
            state["admitted"] += 1
            try:
                data, ref_data = await images_of(request)
                try:
                    image = load_image(data, name="image")
                    reference = load_image(ref_data, name="reference", mode="rgb") if ref_data else None
                except ImageError as exc:
                    raise ApiError(400, "bad_image", str(exc)) from None
                async with gate:
                    t0 = time.perf_counter()
                    out, dev = await run_in_threadpool(_run, models, name, options, image, reference)
                    seconds = time.perf_counter() - t0
            finally:
                state["admitted"] -= 1
            return Response(png(out), media_type="image/png",
                            headers={"X-Method": name, "X-Device": dev, "X-Seconds": f"{seconds:.3f}"})  # fmt: skip
        except ApiError as exc:
            return error(exc)

    async def methods(request: Request) -> JSONResponse:
        out = []
        for n in backends.names():
            st = backends.status(n)
            out.append({**backends.describe(n).to_dict(), "available": st.available, "status": st.reason,
                        "source": backends.source(n)})  # fmt: skip
        return JSONResponse({"device": device, "methods": out})

    async def health(request: Request) -> JSONResponse:
        return JSONResponse({"status": "ok", "device": device})

    app = Starlette(routes=[Route("/colorize", colorize, methods=["POST"]), Route("/methods", methods, methods=["GET"]),
                            Route("/health", health, methods=["GET"])])  # fmt: skip
    app.state.models = models
    return app


def _run(models: Models, name: str, options: dict, image: np.ndarray, reference) -> tuple[np.ndarray, str]:
    """Load (cached) and colorize in a worker thread; user-facing failures become ApiErrors."""
    try:
        model = models.get(name, options)
    except (BackendUnavailable, WeightsUnavailable) as exc:
        raise ApiError(503, "method_unavailable", str(exc)) from None
    except (ColorizationError, ValueError) as exc:
        raise ApiError(400, "bad_option", str(exc)) from None
    try:
        out = model.colorize(image, reference=reference) if reference is not None else model.colorize(image)
    except ReferenceRequired as exc:
        raise ApiError(400, "reference_required", str(exc)) from None
    except ImageError as exc:
        raise ApiError(400, "bad_image", str(exc)) from None
    except ColorizationError as exc:
        raise ApiError(500, "failed", str(exc)) from None
    except Exception as exc:  # noqa: BLE001 - a broken method must not take the server down
        raise ApiError(500, "failed", f"{name} failed: {type(exc).__name__}: {str(exc)[:300]}") from None
    return out, str(getattr(model, "device", models.device))


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="colorize-serve", description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__.split("\n\n", 1)[1])  # fmt: skip
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default: this machine only; 0.0.0.0 for all)")
    p.add_argument("--port", type=int, default=8000)
    p.add_argument("--device", default="auto", help="auto | cpu | cuda")
    p.add_argument("--max-mb", type=float, default=25.0, help="largest request body in MB (default 25)")
    p.add_argument("--concurrency", type=int, default=1, help="colorizations running at once (default 1)")
    p.add_argument("--queue", type=int, default=4, help="requests allowed to wait beyond those (default 4); more get 429")
    p.add_argument("--preload", default="", help="comma-separated methods to load at start")
    args = p.parse_args(argv)
    try:
        if args.max_mb <= 0 or args.concurrency < 1 or args.queue < 0 or not 0 < args.port < 65536:
            raise ValueError("--max-mb must be > 0, --concurrency >= 1, --queue >= 0 and --port 1-65535")
        limits = Limits(int(args.max_mb * 2**20), args.concurrency, args.queue, args.device)
        backends.resolve_device(args.device)
        preload = [m.strip() for m in args.preload.split(",") if m.strip()]
        for m in preload:
            if m not in backends.METHODS:
                raise ValueError(f"--preload: unknown method {m!r}; known: {', '.join(backends.names())}")
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    import uvicorn

    app = create_app(limits)
    for m in preload:
        app.state.models.get(m, {})
    uvicorn.run(app, host=args.host, port=args.port, log_level="info")
    return 0


if __name__ == "__main__":
    sys.exit(main())
