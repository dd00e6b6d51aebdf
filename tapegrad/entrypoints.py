"""Find installed plugins (entry points of one group) without importing
``importlib.metadata``, which alone would double the import time of tapegrad.

Only ``*.dist-info`` and ``*.egg-info`` folders on ``sys.path`` whose
``entry_points.txt`` names the group are read. A zip file on ``sys.path`` (a zipped
egg) falls back to ``importlib.metadata``.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from importlib import import_module
from typing import Any


@dataclass(frozen=True)
class EntryPoint:
    name: str
    value: str  # "package.module" or "package.module:attr.path"
    dist: str  # distribution name
    version: str

    def load(self) -> Any:
        module, _, attrs = self.value.partition(":")
        obj = import_module(module.strip())
        for attr in filter(None, attrs.strip().split(".")):
            obj = getattr(obj, attr)
        return obj


def entry_points(group: str) -> list[EntryPoint]:
    """Entry points of ``group`` of the distributions on ``sys.path``, first one wins."""
    found: list[EntryPoint] = []
    seen: set[str] = set()
    for base in sys.path:
        base = base or "."
        if os.path.isfile(base):
            return _from_metadata(group)
        try:
            names = os.listdir(base)
        except OSError:
            continue
        for folder in names:
            if not folder.endswith((".dist-info", ".egg-info")):
                continue
            meta_dir = os.path.join(base, folder)
            eps = _section(_read(os.path.join(meta_dir, "entry_points.txt")), group)
            if not eps:
                continue
            dist, version = _dist_name(meta_dir, folder)
            key = dist.lower().replace("-", "_")
            if key in seen:
                continue
            seen.add(key)
            found += [EntryPoint(n, v, dist, version) for n, v in eps]
    return found


def _read(path: str) -> str:
    try:
        with open(path, encoding="utf-8") as f:
            return f.read()
    except OSError:
        return ""


def _section(text: str, group: str) -> list[tuple[str, str]]:
    if f"[{group}]" not in text:
        return []
    out, inside = [], False
    for line in text.splitlines():
        line = line.strip()
        if line.startswith("["):
            inside = line == f"[{group}]"
        elif inside and "=" in line and not line.startswith(("#", ";")):
            name, value = line.split("=", 1)
            out.append((name.strip(), value.strip()))
    return out


def _dist_name(meta_dir: str, folder: str) -> tuple[str, str]:
    name = version = ""
    for fname in ("METADATA", "PKG-INFO"):
        for line in _read(os.path.join(meta_dir, fname)).splitlines():
            if line.startswith("Name:") and not name:
                name = line[5:].strip()
            elif line.startswith("Version:") and not version:
                version = line[8:].strip()
            elif not line:
                break
        if name:
            break
    if not name:  # fall back to the folder's name-version
        stem = folder.rsplit(".", 1)[0]
        name, _, version = stem.partition("-")
    return name, version


def _from_metadata(group: str) -> list[EntryPoint]:
    from importlib import metadata

    return [EntryPoint(ep.name, ep.value, ep.dist.metadata["Name"] if ep.dist else "",
                       ep.dist.version if ep.dist else "")
            for ep in metadata.entry_points(group=group)]
