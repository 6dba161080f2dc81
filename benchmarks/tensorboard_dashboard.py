"""Look at the HParams dashboard as a user would: TensorBoard on loopback, headless Chromium.

Serves LOGDIR (``results/<sweep>/tensorboard``) with ``tensorboard --host 127.0.0.1``,
waits until it answers, and saves a screenshot of the HParams tab to OUT: its table of
trials, or with ``--view parallel`` its parallel coordinates (Chromium is driven over the
DevTools protocol to click that tab; needs the ``websocket-client`` package). Skips, saying
so, where Chromium, TensorBoard or websocket-client is missing. Look at the picture: one
row (or line) per trial with its hyperparameters, seed and fold, and its metrics.

    python benchmarks/tensorboard_dashboard.py LOGDIR [OUT.png] [--view table|parallel]
"""

from __future__ import annotations

import argparse
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_for(url: str, seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while True:
        try:
            with urllib.request.urlopen(url, timeout=2):
                return
        except OSError:
            if time.monotonic() > deadline:
                raise SystemExit(f"nothing answered at {url} in {seconds:.0f} s") from None
            time.sleep(0.5)


def table_view(chromium: str, url: str, out: Path, wait: float) -> None:
    """Chromium's own --screenshot of the page as it first opens (the table view)."""
    shot = [
        chromium,
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--hide-scrollbars",
        "--window-size=1600,1000",
        f"--virtual-time-budget={int(wait * 1000)}",
        f"--screenshot={out.resolve()}",
        url,
    ]
    subprocess.run(shot, check=True, capture_output=True, timeout=wait + 120)


# Finds a tab by its text through shadow roots and same-origin frames, and clicks it.
_CLICK = """
(function(text){
  function walk(root){
    for (const el of root.querySelectorAll('*')){
      if (el.shadowRoot){ const r = walk(el.shadowRoot); if (r) return r; }
      if (el.tagName === 'IFRAME'){ try { const r = walk(el.contentDocument); if (r) return r; }
                                     catch(e){} }
      if (el.children.length === 0 && (el.textContent||'').trim().toUpperCase() === text)
        return el;
    }
    return null;
  }
  const el = walk(document);
  if (!el) return false;
  (el.closest('paper-tab') || el).click();
  return true;
})('PARALLEL COORDINATES VIEW')
"""


def parallel_view(chromium: str, url: str, out: Path, wait: float) -> None:
    """Open the page over the DevTools protocol, click the parallel-coordinates tab, shoot."""
    import base64
    import json

    import websocket  # websocket-client

    port = free_port()
    browser = subprocess.Popen(
        [chromium, "--headless", "--no-sandbox", "--disable-gpu", "--window-size=1600,1000",
         f"--remote-debugging-port={port}", "about:blank"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        wait_for(f"http://127.0.0.1:{port}/json", 60)
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/json", timeout=5) as r:
            page = next(p for p in json.load(r) if p["type"] == "page")
        ws = websocket.create_connection(page["webSocketDebuggerUrl"], suppress_origin=True)
        calls = iter(range(1, 1_000_000))

        def call(method: str, **params: object) -> dict:
            n = next(calls)
            ws.send(json.dumps({"id": n, "method": method, "params": params}))
            while True:
                reply = json.loads(ws.recv())
                if reply.get("id") == n:
                    return reply

        call("Page.navigate", url=url)
        time.sleep(wait)
        clicked = call("Runtime.evaluate", expression=_CLICK, returnByValue=True)
        if not clicked.get("result", {}).get("result", {}).get("value"):
            raise SystemExit("the PARALLEL COORDINATES VIEW tab was not found on the page")
        time.sleep(wait / 2)
        png = call("Page.captureScreenshot", format="png")["result"]["data"]
        out.write_bytes(base64.b64decode(png))
        ws.close()
    finally:
        browser.terminate()
        browser.wait(timeout=30)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("logdir", type=Path)
    parser.add_argument("out", nargs="?", type=Path, default=Path("hparams.png"))
    parser.add_argument("--wait", type=float, default=15, help="seconds for the page to draw")
    parser.add_argument("--view", choices=["table", "parallel"], default="table")
    args = parser.parse_args()
    if args.view == "parallel":
        try:
            import websocket  # noqa: F401
        except ImportError:
            print("skipped: --view parallel needs the websocket-client package")
            return
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    tensorboard = shutil.which("tensorboard")
    if chromium is None or tensorboard is None:
        print(f"skipped: needs chromium and tensorboard (found {chromium}, {tensorboard})")
        return
    port = free_port()
    server = subprocess.Popen(
        [tensorboard, "--logdir", str(args.logdir), "--host", "127.0.0.1", "--port", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        base = f"http://127.0.0.1:{port}"
        wait_for(f"{base}/data/logdir", 60)
        view = table_view if args.view == "table" else parallel_view
        view(chromium, f"{base}/#hparams", args.out, args.wait)
        print(f"screenshot of the HParams {args.view} view: {args.out}")
    finally:
        server.terminate()
        server.wait(timeout=30)


if __name__ == "__main__":
    sys.exit(main())
