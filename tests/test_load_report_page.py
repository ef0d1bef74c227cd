"""The HTML report of ``rtlayer load``, looked at in headless Chromium.

Chromium runs in a loopback-only network namespace (``unshare -n``), as every browser test here does, and
takes a screenshot with its own ``--screenshot`` switch; the page must render its plots (a blank or
one-colour page fails). The screenshot is kept under ``test-artifacts/`` (the copy in ``docs/images`` is
one such screenshot).
"""

from __future__ import annotations

import asyncio
import shutil
import subprocess
from pathlib import Path

from matplotlib.image import imread

from rtlayer.load import LoadConfig, run_load
from rtlayer.load.report import write_report
from rtlayer.server import RealtimeServer

ROOT = Path(__file__).resolve().parent.parent
ARTIFACTS = ROOT / "test-artifacts"
CHROMIUM = "/usr/bin/chromium"
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
    "--hide-scrollbars",
    "--host-resolver-rules=MAP * ~NOTFOUND",
    "--window-size=1100,1500",
]


def screenshot(page: Path, png: Path, profile: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [
            "unshare",
            "-n",
            "sh",
            "-c",
            'ip link set lo up && exec "$@"',
            "sh",
            CHROMIUM,
            *FLAGS,
            f"--user-data-dir={profile}",
            f"--screenshot={png}",
            page.as_uri(),
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


async def test_the_report_page_shows_its_table_and_plots_in_a_browser(
    server: RealtimeServer, tmp_path: Path
) -> None:
    result = await run_load(LoadConfig(url=server.ws_url, sessions=4, ramp=10, duration=4.0))
    _, page = write_report(result, tmp_path)
    await asyncio.to_thread(check_screenshot, page, tmp_path)


def check_screenshot(page: Path, folder: Path) -> None:
    assert shutil.which("unshare") and Path(CHROMIUM).exists(), "chromium and unshare are test requirements"
    png = folder / "report.png"
    done = screenshot(page, png, folder / "profile")
    assert done.returncode == 0 and png.exists(), done.stderr[-2000:]
    pixels = imread(png)
    height, width = pixels.shape[:2]
    assert (width, height) == (1100, 1500)
    # Text, table rules and four plots: the page is far from one colour.
    colours = {tuple(row) for row in pixels.reshape(-1, pixels.shape[2])[::97].round(2).tolist()}
    assert len(colours) > 20
    ARTIFACTS.mkdir(exist_ok=True)
    shutil.copy(png, ARTIFACTS / "load-report.png")
