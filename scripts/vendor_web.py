"""Copy the web pages' browser assets from ``web/assets/node_modules`` into the committed vendor folders.

Run by ``make vendor`` after ``npm ci`` in ``web/assets`` (the versions come from the committed
``package-lock.json``). Only the minified files the pages load are copied, with their licences; source-map
comments are stripped (no ``.map`` is shipped, and a browser must not ask for one). Each copy is listed in
``web/static/vendor/manifest.json`` with its package name, version, licence and SHA-256, which a test checks
against the files. axe-core is for the browser tests only: it goes to ``tests/browser/vendor/``, outside the
wheel, and is listed in the same manifest with that path.

``make run`` never runs this: the copies are committed, so serving needs neither Node nor a network.
"""

from __future__ import annotations

import hashlib
import json
import re
import shutil
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
MODULES = ROOT / "web" / "assets" / "node_modules"
VENDOR = ROOT / "web" / "static" / "vendor"
TEST_VENDOR = ROOT / "tests" / "browser" / "vendor"

#: (npm package, destination folder, files to copy relative to the package; the licence file first)
ASSETS: tuple[tuple[str, Path, tuple[str, ...]], ...] = (
    (
        "maplibre-gl",
        VENDOR / "maplibre-gl",
        ("LICENSE.txt", "dist/maplibre-gl.mjs", "dist/maplibre-gl-worker.mjs", "dist/maplibre-gl.css"),
    ),
    ("echarts", VENDOR / "echarts", ("LICENSE", "dist/echarts.esm.min.mjs")),
    ("htmx.org", VENDOR / "htmx", ("LICENSE", "dist/htmx.min.js")),
    ("axe-core", TEST_VENDOR / "axe-core", ("LICENSE", "axe.min.js")),
)
_SOURCE_MAP = re.compile(rb"\n?//# sourceMappingURL=[^\n]*\n?")


def copy_assets() -> list[dict[str, str]]:
    """Copy every asset and return the manifest's entries."""
    entries = []
    for package, destination, files in ASSETS:
        meta = json.loads((MODULES / package / "package.json").read_text(encoding="utf-8"))
        if destination.exists():
            shutil.rmtree(destination)
        destination.mkdir(parents=True)
        for name in files:
            data = (MODULES / package / name).read_bytes()
            if name.endswith((".js", ".mjs")):
                data = _SOURCE_MAP.sub(b"\n", data)
            target = destination / Path(name).name
            target.write_bytes(data)
            entries.append({
                "name": meta["name"], "version": meta["version"], "license": meta["license"],
                "path": target.relative_to(ROOT).as_posix(), "sha256": hashlib.sha256(data).hexdigest(),
            })  # fmt: skip
    return entries


def main() -> int:
    """Copy the assets and write the manifest."""
    if not MODULES.is_dir():
        print("run `npm ci` in web/assets first (make vendor does)", file=sys.stderr)
        return 2
    manifest = {"generated_by": "scripts/vendor_web.py (make vendor)", "assets": copy_assets()}
    (VENDOR / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
    for entry in manifest["assets"]:
        print(f"{entry['name']} {entry['version']} ({entry['license']}) {entry['path']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
