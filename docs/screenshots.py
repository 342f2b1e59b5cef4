"""Screenshots of the dashboard and the report of a real study, for the README.

    python docs/screenshots.py [--storage sqlite:///storage/kws-study.db] [--study-name NAME]

Needs a finished study (run ``python run_study.py --trials 100`` first), headless
Chromium (Debian: ``apt-get install chromium``) and the docs extra (``pip install -e
'.[docs]'``, for websocket-client). Starts ``run_study.py dashboard`` on a free
loopback port, writes the report with ``run_study.py report``, and has Chromium save
``docs/dashboard.png`` (the study's page) and ``docs/report.png``.
"""

from __future__ import annotations

import argparse
import base64
import json
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import websocket  # websocket-client: pip install -e '.[docs]'

REPO_ROOT = Path(__file__).resolve().parents[1]
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--hide-scrollbars",
]


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _screenshot(chromium: str, url: str, out: Path, size: str, settle_s: float = 10.0) -> None:
    """Load ``url`` in headless Chromium, let it draw for ``settle_s`` seconds, save a PNG.

    ``chromium --screenshot`` shoots at the load event, before the dashboard has fetched
    and drawn its study, so the page is driven through the DevTools protocol instead.
    """
    width, height = (int(v) for v in size.split(","))
    port = _free_port()
    browser = subprocess.Popen(
        [chromium, *CHROMIUM_FLAGS, f"--remote-debugging-port={port}", "about:blank"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        for _ in range(100):
            try:
                pages = json.loads(urllib.request.urlopen(f"http://127.0.0.1:{port}/json").read())
                break
            except OSError:
                time.sleep(0.2)
        else:
            raise SystemExit("headless Chromium did not start")
        page = next(p for p in pages if p["type"] == "page")
        connection = websocket.create_connection(page["webSocketDebuggerUrl"], timeout=60)
        calls = iter(range(1, 1000))

        def call(method: str, **params) -> dict:
            number = next(calls)
            connection.send(json.dumps({"id": number, "method": method, "params": params}))
            while True:
                message = json.loads(connection.recv())
                if message.get("id") == number:
                    return message.get("result", {})

        call("Emulation.setDeviceMetricsOverride", width=width, height=height,
             deviceScaleFactor=1, mobile=False)  # fmt: skip
        call("Page.navigate", url=url)
        time.sleep(settle_s)
        image = call("Page.captureScreenshot", format="png")["data"]
        out.write_bytes(base64.b64decode(image))
        connection.close()
    finally:
        browser.terminate()
        browser.wait(timeout=30)
    print(f"{out}: {url}")


def _study_id(base: str, name: str | None) -> int:
    summaries = json.loads(urllib.request.urlopen(f"{base}/api/studies").read())
    studies = summaries["study_summaries"]
    if name is not None:
        studies = [s for s in studies if s["study_name"] == name]
    if not studies:
        raise SystemExit(f"no study {name or ''} in the storage: run the study first")
    return studies[0]["study_id"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--storage", default="sqlite:///storage/kws-study.db")
    parser.add_argument("--study-name", default=None, help="default: the storage's first study")
    parser.add_argument("--artifact-dir", default="storage/artifacts")
    parser.add_argument("--out", type=Path, default=REPO_ROOT / "docs")
    args = parser.parse_args()
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        raise SystemExit("headless Chromium not found: apt-get install chromium")
    args.out.mkdir(parents=True, exist_ok=True)
    run_study = [sys.executable, str(REPO_ROOT / "run_study.py")]
    storage = ["--storage", args.storage]
    name = ["--study-name", args.study_name] if args.study_name else []

    port = _free_port()
    server = subprocess.Popen(
        [*run_study, "dashboard", *storage, "--port", str(port), "--artifact-dir",
         args.artifact_dir],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(120):
            try:
                study_id = _study_id(base, args.study_name)
                break
            except OSError:
                time.sleep(0.5)
        else:
            raise SystemExit("the dashboard did not start")
        _screenshot(
            chromium,
            f"{base}/dashboard/studies/{study_id}",
            args.out / "dashboard.png",
            "1400,1600",
        )
    finally:
        server.terminate()
        server.wait(timeout=30)

    report = args.out / "report.html"
    subprocess.run(
        [*run_study, "report", *storage, *name, "--artifact-dir", args.artifact_dir,
         "--out", str(report)],
        check=True,
    )  # fmt: skip
    try:
        _screenshot(chromium, report.resolve().as_uri(), args.out / "report.png", "1200,2400")
    finally:
        report.unlink()


if __name__ == "__main__":
    main()
