"""Make docs/serve.png, the README's picture of `cnnkit serve`: a run served on loopback, one image dropped into the
page in headless Chromium (Debian's `chromium`, driven by Playwright), the page captured.

    python docs/screenshot.py RUN IMAGE [--out docs/serve.png]
"""

from __future__ import annotations

import argparse
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("run", type=Path)
    parser.add_argument("image", type=Path)
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "serve.png")
    args = parser.parse_args()
    from playwright.sync_api import sync_playwright

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = subprocess.Popen([sys.executable, "-m", "cnnkit.cli", "serve", str(args.run), "--port", str(port)])
    try:
        for _ in range(300):
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", port)) == 0:
                    break
            time.sleep(0.2)
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=shutil.which("chromium"), args=["--no-sandbox"])
            page = browser.new_page(viewport={"width": 1000, "height": 640})
            page.goto(f"http://127.0.0.1:{port}/")
            page.wait_for_selector("#run option", state="attached")
            page.set_input_files("#files", str(args.image))
            page.wait_for_selector(".neighbours img", timeout=60_000)
            page.wait_for_timeout(500)
            page.screenshot(path=str(args.out))
            browser.close()
    finally:
        server.terminate()
        server.wait(timeout=30)
    print(args.out)


if __name__ == "__main__":
    main()
