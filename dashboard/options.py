"""Widgets rendered from a method's declaration (``backends.describe(name).options``).

A method - built-in or from outside - declares its inference options (type, range, default); the
pages call :func:`option_widgets` instead of hand-writing a widget per method, so a new method's
options appear without editing any page. Widget keys are ``<prefix>_<method>_<option>``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import streamlit as st

import backends
from backends.registry import MethodInfo, Option


def widget_key(prefix: str, method: str, option: str) -> str:
    return f"{prefix}_{method}_{option}"


def render_option(info: MethodInfo, o: Option, key: str) -> Any:
    """One widget for option ``o`` of ``info``; returns the value, coerced and range-checked."""
    label = o.label or f"{info.name}: {o.name.replace('_', ' ')}"
    help_ = o.help or None
    if o.type == "bool":
        value = st.checkbox(label, value=bool(o.default), key=key, help=help_)
    elif o.type == "choice":
        choices = list(o.choices)
        value = st.selectbox(label, choices, index=choices.index(o.default) if o.default in choices else 0, key=key, help=help_)
    elif o.type in ("int", "float"):
        cast = int if o.type == "int" else float
        default = cast(o.default if o.default is not None else (o.min if o.min is not None else 0))
        step = cast(o.step) if o.step is not None else (1 if o.type == "int" else None)
        if o.min is not None and o.max is not None:
            value = st.slider(label, cast(o.min), cast(o.max), default, step, key=key, help=help_)
        else:
            lo = cast(o.min) if o.min is not None else None
            hi = cast(o.max) if o.max is not None else None
            value = st.number_input(label, lo, hi, default, step, key=key, help=help_)
    else:
        value = st.text_input(label, value="" if o.default is None else str(o.default), key=key, help=help_)
    return o.coerce(value, info.name)


def option_widgets(name: str, prefix: str) -> dict[str, Any]:
    """The widgets of every option ``name`` declares; returns ``{option: value}`` for ``backends.load``."""
    info = backends.describe(name)
    return {o.name: render_option(info, o, widget_key(prefix, name, o.name)) for o in info.options}


def reference_users(names: list[str]) -> tuple[list[str], list[str]]:
    """(methods that use a colour reference photo, those of them that cannot run without one)."""
    infos = [backends.describe(n) for n in names]
    return [i.name for i in infos if i.uses_reference], [i.name for i in infos if i.needs_reference]


def describe_line(name: str) -> str:
    """``description`` plus the paper, for method tables and captions."""
    info = backends.describe(name)
    return f"{info.description} ({info.paper})" if info.paper and info.paper not in info.description else info.description


class MethodBlurbs(Mapping):
    """``name -> one-line description`` of every registered method, read from its declaration."""

    def __getitem__(self, name: str) -> str:
        if name not in backends.METHODS:
            raise KeyError(name)
        return backends.describe(name).description

    def __iter__(self):
        return iter(backends.names())

    def __len__(self) -> int:
        return len(backends.names())


class SlowMethods:
    """The methods whose declaration says they optimise each photo (``speed="slow"``), looked up lazily."""

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and name in backends.METHODS and backends.describe(name).speed == "slow"

    def __iter__(self):
        return iter(backends.names("slow"))
