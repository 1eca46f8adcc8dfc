"""``python -m experiments.healthcheck``: exit 0 when the dashboard (:8501) or the API (:8000) answers
on this machine - the container's HEALTHCHECK (the slim image has no curl)."""

from __future__ import annotations

import os
import sys
import urllib.request

URLS = os.environ.get("COLORIZE_HEALTH_URLS", "http://127.0.0.1:8501/_stcore/health,http://127.0.0.1:8000/health").split(",")


def main() -> int:
    for url in URLS:
        try:
            with urllib.request.urlopen(url.strip(), timeout=4) as r:
                if r.status == 200:
                    return 0
        except OSError:
            continue
    print(f"unhealthy: none of {', '.join(URLS)} answered", file=sys.stderr)
    return 1


if __name__ == "__main__":
    sys.exit(main())
