"""The built wheel carries the pages: templates, ES modules, CSS, vendored assets and compiled catalogs.

Builds the wheel, installs it (without dependencies, which the test environment has) into a directory of its own,
and renders pages from a process started outside the repository, so nothing can come from the source tree.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

from tests.conftest import REPO

RENDER = """
import sys, tempfile
from pathlib import Path
from fastapi.testclient import TestClient
import shanhai, web
assert Path(web.__file__).resolve().is_relative_to(Path(sys.argv[1]).resolve()), web.__file__
from core.migrate import upgrade
from core.settings import Settings
from shanhai.app import create_app
data = Path(tempfile.mkdtemp())
upgrade(f"sqlite:///{data / 'shanhai.db'}")
app = create_app(Settings(environment="test", data_dir=data))
with TestClient(app) as client:
    zh = client.get("/verify", headers={"Accept-Language": "zh-CN"})
    en = client.get("/verify", headers={"Accept-Language": "en"})
    module = client.get("/static/web/js/verify.mjs")
    vendor = client.get("/static/web/vendor/maplibre-gl/maplibre-gl.mjs")
    print(zh.status_code, "核验注销证书" in zh.text, en.status_code, "Verify a retirement certificate" in en.text,
          module.status_code, module.headers["content-type"], vendor.status_code)
app.state.engine.dispose()
"""


def source_copy(destination: Path) -> Path:
    """Copy the files git would ship (tracked or new, not ignored): no stale build/ or npm folder can leak in."""
    listed = subprocess.run(["git", "ls-files", "-co", "--exclude-standard", "-z"], cwd=REPO, capture_output=True,
                            check=True).stdout.decode().split("\0")  # fmt: skip
    for name in filter(None, listed):
        if (REPO / name).is_file():
            (destination / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(REPO / name, destination / name)
    return destination


def test_the_installed_wheel_renders_pages(tmp_path: Path) -> None:
    source = source_copy(tmp_path / "source")
    built = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-w", str(tmp_path / "dist"),
                            str(source)], capture_output=True, text=True, timeout=600)  # fmt: skip
    assert built.returncode == 0, built.stderr[-2000:]
    [wheel] = (tmp_path / "dist").glob("shanhai-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    for needed in ("web/templates/base.html", "web/static/js/verify.mjs", "web/static/css/shanhai.css",
                   "web/static/vendor/manifest.json", "web/static/vendor/maplibre-gl/maplibre-gl-worker.mjs",
                   "web/locale/zh_CN/LC_MESSAGES/messages.mo", "access/permissions.py", "shanhai/app.py"):  # fmt: skip
        assert needed in names, needed
    assert not any(name.startswith("tests/") or "axe" in name for name in names)  # axe-core is for tests only
    target = tmp_path / "installed"
    installed = subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", "--no-compile", "--target",
                                str(target), str(wheel)], capture_output=True, text=True, timeout=600)  # fmt: skip
    assert installed.returncode == 0, installed.stderr[-2000:]
    env = {**os.environ, "PYTHONPATH": str(target)}
    rendered = subprocess.run([sys.executable, "-c", RENDER, str(target)], cwd=tmp_path, env=env, capture_output=True,
                              text=True, timeout=300)  # fmt: skip
    assert rendered.returncode == 0, rendered.stderr[-3000:]
    assert rendered.stdout.split() == ["200", "True", "200", "True", "200", "text/javascript;", "charset=utf-8", "200"]


def test_the_vendor_manifest_matches_the_files() -> None:
    import hashlib

    manifest = json.loads((REPO / "web/static/vendor/manifest.json").read_text(encoding="utf-8"))
    assert {a["name"] for a in manifest["assets"]} == {"maplibre-gl", "echarts", "htmx.org", "axe-core"}
    for asset in manifest["assets"]:
        data = (REPO / asset["path"]).read_bytes()
        assert hashlib.sha256(data).hexdigest() == asset["sha256"], asset["path"]
        assert asset["version"] and asset["license"]
        assert b"sourceMappingURL" not in data
    lock = json.loads((REPO / "web/assets/package-lock.json").read_text(encoding="utf-8"))
    for asset in manifest["assets"]:
        assert lock["packages"][f"node_modules/{asset['name']}"]["version"] == asset["version"]
