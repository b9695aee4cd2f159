"""Headless Chromium driven over the DevTools protocol on a pipe, for tests of the static HTML reports.

    with HeadlessChromium() as browser:
        browser.open(path_to_html)
        facts = browser.evaluate(PAGE_FACTS_JS)        # what the page holds, incl. whether its videos decode
        browser.screenshot(tmp_path / "page.png")

`--remote-debugging-pipe` makes Chromium read protocol commands from fd 3 and write answers to fd 4 (one JSON
message per NUL-terminated chunk), so no websocket client and no network port are needed. The flags are the
ones this project's machines need: no sandbox (root), no GPU, and nothing that reaches out to the network.
"""

from __future__ import annotations

import base64
import json
import os
import select
import shutil
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

CHROMIUM_NAMES = ("chromium", "chromium-browser", "google-chrome")
CHROMIUM_FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync",
                  "--disable-dev-shm-usage", "--mute-audio", "--hide-scrollbars", "--autoplay-policy=no-user-gesture-required",
                  # lets the test read decoded video pixels back from a canvas on a file:// page
                  "--allow-file-access-from-files")


def find_chromium() -> str | None:
    return next((path for name in CHROMIUM_NAMES if (path := shutil.which(name))), None)


class BrowserError(RuntimeError):
    """Chromium did not answer, or answered a command with an error."""


class HeadlessChromium:
    """One headless Chromium with one page, driven by DevTools protocol commands."""

    def __init__(self, width: int = 1280, height: int = 900, timeout_s: float = 20.0):
        executable = find_chromium()
        if executable is None:
            raise FileNotFoundError("no Chromium found (looked for " + ", ".join(CHROMIUM_NAMES)
                                    + "); install it with: bash scripts/setup.sh")
        self.timeout_s = timeout_s
        self._profile = tempfile.TemporaryDirectory(prefix="chromium-profile-")
        to_browser_r, self._to_browser = os.pipe()
        self._from_browser, from_browser_w = os.pipe()

        def wire_pipes() -> None:  # in the child: the protocol's fixed descriptors 3 and 4
            read_end, write_end = os.dup(to_browser_r), os.dup(from_browser_w)  # above 4, so dup2 never no-ops
            os.dup2(read_end, 3)  # os.dup2 makes the copies inheritable
            os.dup2(write_end, 4)

        command = [executable, *CHROMIUM_FLAGS, f"--user-data-dir={self._profile.name}",
                   f"--window-size={width},{height}", "--remote-debugging-pipe", "about:blank"]
        self._process = subprocess.Popen(command, preexec_fn=wire_pipes, close_fds=False,
                                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        os.close(to_browser_r)
        os.close(from_browser_w)
        self._buffer = b""
        self._next_id = 0
        self.events: list[dict[str, Any]] = []
        self._session = None
        target = self.send("Target.createTarget", {"url": "about:blank"})["targetId"]
        self._session = self.send("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
        self.send("Page.enable")
        self.send("Runtime.enable")
        self.send("Emulation.setDeviceMetricsOverride",
                  {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": False})

    # ------------------------------------------------------------------ protocol

    def _read_message(self, deadline: float) -> dict[str, Any]:
        while b"\0" not in self._buffer:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([self._from_browser], [], [], left)[0]:
                raise BrowserError(f"Chromium did not answer within {self.timeout_s} s")
            chunk = os.read(self._from_browser, 1 << 20)
            if not chunk:
                raise BrowserError(f"Chromium closed the protocol pipe (exit status {self._process.poll()})")
            self._buffer += chunk
        message, self._buffer = self._buffer.split(b"\0", 1)
        return json.loads(message)

    def send(self, method: str, params: dict[str, Any] | None = None) -> dict[str, Any]:
        """Send one command (to the page once attached) and return its result; events seen meanwhile are kept."""
        self._next_id += 1
        message = {"id": self._next_id, "method": method, "params": params or {}}
        if self._session is not None:
            message["sessionId"] = self._session
        os.write(self._to_browser, json.dumps(message).encode() + b"\0")
        deadline = time.monotonic() + self.timeout_s
        while True:
            answer = self._read_message(deadline)
            if answer.get("id") == self._next_id:
                if "error" in answer:
                    raise BrowserError(f"{method}: {answer['error']}")
                return answer.get("result", {})
            self.events.append(answer)

    def wait_for_event(self, method: str) -> dict[str, Any]:
        deadline = time.monotonic() + self.timeout_s
        while True:
            for index, event in enumerate(self.events):
                if event.get("method") == method:
                    return self.events.pop(index)
            self.events.append(self._read_message(deadline))

    # ------------------------------------------------------------------ page

    def open(self, path: Path) -> None:
        """Load a local file and wait for its load event."""
        self.events.clear()
        result = self.send("Page.navigate", {"url": Path(path).resolve().as_uri()})
        if result.get("errorText"):
            raise BrowserError(f"cannot open {path}: {result['errorText']}")
        self.wait_for_event("Page.loadEventFired")

    def evaluate(self, expression: str) -> Any:
        """The value of a JavaScript expression in the page (promises are awaited)."""
        result = self.send("Runtime.evaluate", {"expression": expression, "awaitPromise": True,
                                                "returnByValue": True})
        if "exceptionDetails" in result:
            raise BrowserError(f"JavaScript raised: {result['exceptionDetails']}")
        return result["result"].get("value")

    def screenshot(self, path: Path, full_page: bool = True) -> Path:
        """Save a PNG of the page (the whole page when `full_page`), its videos showing their first frame."""
        self.evaluate(REWIND_VIDEOS_JS)
        params: dict[str, Any] = {"format": "png"}
        if full_page:
            size = self.send("Page.getLayoutMetrics")["cssContentSize"]
            params |= {"captureBeyondViewport": True,
                       "clip": {"x": 0, "y": 0, "width": size["width"], "height": size["height"], "scale": 1}}
        data = base64.b64decode(self.send("Page.captureScreenshot", params)["data"])
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        Path(path).write_bytes(data)
        return Path(path)

    def close(self) -> None:
        try:
            self._session = None
            self.send("Browser.close")
        except (BrowserError, OSError):
            pass
        try:
            self._process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait()
        for fd in (self._to_browser, self._from_browser):
            try:
                os.close(fd)
            except OSError:
                pass
        self._profile.cleanup()

    def __enter__(self) -> HeadlessChromium:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


# What a report page holds, and whether each of its videos decodes: loads every video, waits for its first
# frame (or its error), seeks to the middle (a frame is only drawable once one was presented), draws that frame
# to a canvas and measures how much its pixels vary (a blank or undecoded frame does not), then plays the first
# video briefly to see its time advance.
PAGE_FACTS_JS = r"""
(async () => {
  const when = (v, event) => new Promise((resolve) => {
    const timer = setTimeout(() => resolve('timeout'), 8000);
    v.addEventListener(event, () => { clearTimeout(timer); resolve('ok'); }, {once: true});
    v.addEventListener('error', () => { clearTimeout(timer); resolve('error ' + (v.error ? v.error.code : '?')); },
                       {once: true});
  });
  const firstFrame = (v) => {
    if (v.readyState >= 2) return Promise.resolve('ok');
    if (v.error) return Promise.resolve('error ' + v.error.code);
    const loaded = when(v, 'loadeddata');
    v.preload = 'auto';
    v.load();
    return loaded;
  };
  const pixelSpread = async (v) => {
    const seeked = when(v, 'seeked');
    v.currentTime = v.duration / 2;
    if (await seeked !== 'ok') return 0;
    const c = document.createElement('canvas');
    c.width = v.videoWidth; c.height = v.videoHeight;
    if (!c.width || !c.height) return 0;
    const ctx = c.getContext('2d');
    const spread = () => {
      ctx.clearRect(0, 0, c.width, c.height);
      ctx.drawImage(v, 0, 0);
      const d = ctx.getImageData(0, 0, c.width, c.height).data;
      let min = 255, max = 0;
      for (let i = 0; i < d.length; i += 4) { min = Math.min(min, d[i], d[i + 1], d[i + 2]);
                                              max = Math.max(max, d[i], d[i + 1], d[i + 2]); }
      return max - min;
    };
    // 'seeked' can fire before a busy machine's decoder has handed over the frame, which then draws blank:
    // look again for up to 3 s; a video that does not decode stays blank throughout.
    let value = spread();
    for (let tries = 0; value === 0 && tries < 30; tries++) {
      await new Promise((r) => setTimeout(r, 100));
      value = spread();
    }
    return value;
  };
  const videos = [];
  for (const v of document.querySelectorAll('video')) {
    v.muted = true;
    const state = await firstFrame(v);
    const facts = {src: v.getAttribute('src'), state, readyState: v.readyState, duration: v.duration,
                   width: v.videoWidth, height: v.videoHeight};
    facts.pixelSpread = state === 'ok' ? await pixelSpread(v) : 0;
    videos.push(facts);
  }
  let played = null;  // seconds of the first video that played (its looping makes currentTime unreliable)
  const first = document.querySelector('video');
  if (first && videos[0].state === 'ok') {
    first.currentTime = 0;
    await first.play();
    await new Promise((r) => setTimeout(r, 500));
    first.pause();
    played = 0;
    for (let i = 0; i < first.played.length; i++) played += first.played.end(i) - first.played.start(i);
  }
  const visible = (el) => { const r = el.getBoundingClientRect(); return r.width > 0 && r.height > 0; };
  return {
    title: document.title,
    tables: [...document.querySelectorAll('table')].filter(visible).map((t) => t.id || t.className),
    tableRows: document.querySelectorAll('table tbody tr').length,
    charts: [...document.querySelectorAll('svg.chart')].filter(visible).map((s) => s.dataset.chart),
    bars: document.querySelectorAll('svg.chart rect.bar').length,
    lines: document.querySelectorAll('svg.chart polyline.line').length,
    externalResources: [...document.querySelectorAll('script[src], link[href], img[src]')]
      .map((e) => e.getAttribute('src') || e.getAttribute('href')).filter((u) => /^(https?:)?\/\//.test(u)),
    videos, played,
    pageWidth: document.documentElement.scrollWidth, viewportWidth: window.innerWidth,
  };
})()
"""


# Shows each video's first frame, paused, for screenshots: headless Chromium keeps drawing a loading spinner
# over a video that was seeked but never played, so each plays for a moment first.
REWIND_VIDEOS_JS = r"""
(async () => {
  for (const v of document.querySelectorAll('video')) {
    if (v.readyState < 1) continue;
    v.muted = true;
    await v.play().catch(() => null);
    await new Promise((r) => setTimeout(r, 60));
    v.pause();
    const seeked = new Promise((r) => { v.addEventListener('seeked', r, {once: true}); setTimeout(r, 2000); });
    v.currentTime = 0.001;
    await seeked;
  }
  await new Promise((r) => setTimeout(r, 300));
})()
"""
