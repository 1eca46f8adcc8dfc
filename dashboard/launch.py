"""``colorize-dashboard``: ``streamlit run dashboard/app.py`` for an installed workbench.

Applies the project's Streamlit settings (``.streamlit/config.toml``: offline, localhost only,
25-MB uploads) as command-line flags, so they hold whatever the current folder is. Extra
arguments go to Streamlit, e.g. ``colorize-dashboard --server.port 8502``.
"""

from __future__ import annotations

import sys
from pathlib import Path

import tomllib

HERE = Path(__file__).resolve().parent


def config_file() -> Path | None:
    """The checkout's ``.streamlit/config.toml``, else the copy ``pip install`` put under ``share/``."""
    for p in (HERE.parent / ".streamlit" / "config.toml", Path(sys.prefix) / "share" / "colorization-workbench" / "streamlit" / "config.toml"):
        if p.is_file():
            return p
    return None


def config_flags(path: Path | None) -> list[str]:
    if path is None:
        return []
    flags = []
    for section, values in tomllib.loads(path.read_text()).items():
        for key, value in values.items():
            v = str(value).lower() if isinstance(value, bool) else str(value)
            flags.append(f"--{section}.{key}={v}")
    return flags


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    given = {a.split("=", 1)[0] for a in argv if a.startswith("--")}
    flags = [f for f in config_flags(config_file()) if f.split("=", 1)[0] not in given]
    from streamlit.web import cli as stcli

    sys.argv = ["streamlit", "run", str(HERE / "app.py"), *flags, *argv]
    try:
        stcli.main()
    except SystemExit as exc:
        return int(exc.code or 0)
    return 0


if __name__ == "__main__":
    sys.exit(main())
