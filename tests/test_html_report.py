"""`erasebench report RUN_DIR... --format html --out DIR` (benchmark/html_report.py).

Two real runs (``none`` and ``negprompt``) of the shipped shapes model on three shapes prompts, one of them
with markup in it, make the site. The page is checked as text and, where Debian's ``chromium`` is
installed, in headless Chromium driven over the DevTools protocol on a pipe (``--remote-debugging-pipe``,
no extra package): no console error, every video plays (readyState, duration, time advancing), the markup
prompt shows as text and opens no dialog. The screenshot is kept as ``screenshot.png`` in the site folder.
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import subprocess
import time
from pathlib import Path

import pytest

from benchmark.results import SampleRecord

XSS = "<img src=x onerror=alert(1)>"
SUITE = f"""name: report-test
version: 1
description: Shapes prompts for the HTML report test, one with markup in it.
source:
  inline:
    - {{id: cross-red-left, prompt: a red cross moving left, category: cross, shape: cross, colour: red, motion: left}}
    - {{id: square-blue-up, prompt: a blue square moving up, category: square, shape: square, colour: blue, motion: up}}
    - {{id: circle-green-right, prompt: "{XSS} a green circle moving right", category: circle, shape: circle, colour: green, motion: right}}
columns: {{prompt_id: id, prompt: prompt, category: category, extra: [shape, colour, motion]}}
concepts: [cross]
seed_policy: derived
default_model: shapes
metrics: [shapes_oracle]
generation:
  default: {{fps: 8}}
  cogvideox: {{num_frames: 9, height: 32, width: 32, num_inference_steps: 25, guidance_scale: 5.0}}
"""


@pytest.fixture(scope="session")
def shapes_runs(tmp_path_factory):
    from typer.testing import CliRunner

    from benchmark.cli import app

    root = tmp_path_factory.mktemp("html-report")
    suite = root / "report-test.yaml"
    suite.write_text(SUITE)
    for method in ("none", "negprompt"):
        result = CliRunner().invoke(app, ["run", "--suite", str(suite), "--method", method, "--out", str(root / "out"), "-q"])
        assert result.exit_code == 0, result.output
    return root / "out" / "runs"


@pytest.fixture(scope="session")
def site(shapes_runs, tmp_path_factory):
    from typer.testing import CliRunner

    from benchmark.cli import app

    out = tmp_path_factory.mktemp("site")
    result = CliRunner().invoke(app, ["report", str(shapes_runs), "--format", "html", "--out", str(out)])
    assert result.exit_code == 0, result.output
    return out


def test_page_content(site, shapes_runs):
    import av

    page = (site / "index.html").read_text()
    assert "&lt;img src=x onerror=alert(1)&gt; a green circle moving right" in page and XSS not in page
    assert "shapes_oracle.esr_1 ↑" in page and "shapes_oracle.psr_1 ↑" in page
    assert 'id="trade-off-plot" src="data:image/png;base64,' in page
    assert "<caption>shapes_oracle.shape_acc</caption>" in page  # per-category breakdown
    videos = sorted((site / "videos").glob("*.mp4"))
    assert len(videos) == 6 and page.count("<video ") == 6
    header = page.split('<table class="videos">')[1].split("</tr>")[0]
    assert header.index(">none<") < header.index(">negprompt<")  # `none` beside each eraser, first
    for video in videos:
        with av.open(str(video)) as container:
            stream = container.streams.video[0]
            assert (stream.codec_context.name, stream.codec_context.pix_fmt) == ("h264", "yuv420p")
            assert len(list(container.decode(video=0))) == 9
    for run in shapes_runs.iterdir():  # the lossless masters stay
        for record in SampleRecord.read_jsonl(run / "samples.jsonl"):
            with av.open(str(shapes_runs.parent / record.video)) as container:
                assert container.streams.video[0].codec_context.name == "libx264rgb" or container.streams.video[0].codec_context.pix_fmt.startswith("gbr")


def test_html_needs_out_and_writes_nothing_on_bad_input(shapes_runs, tmp_path, cli):
    code, _, err = cli("report", shapes_runs, "--format", "html")
    assert code == 2 and "--format html needs --out DIR" in err
    code, _, err = cli("report", tmp_path / "nothing-here", "--format", "html", "--out", tmp_path / "site")
    assert code == 2 and not (tmp_path / "site").exists()


# ---- headless Chromium over the DevTools protocol (pipe transport) ----------------------------------


class Chromium:
    """Chromium with ``--remote-debugging-pipe``: JSON messages, NUL-terminated, in on fd 3 and out on fd 4."""

    def __init__(self, binary: str, profile: Path):
        to_child_r, self.to_child = os.pipe()
        self.from_child, from_child_w = os.pipe()

        def wire():  # in the child: the pipe ends become fds 3 and 4 (kept open: pass_fds names them)
            a, b = os.dup(to_child_r), os.dup(from_child_w)
            os.dup2(a, 3)
            os.dup2(b, 4)

        self.proc = subprocess.Popen(
            [binary, "--headless=new", "--remote-debugging-pipe", "--no-sandbox", "--disable-gpu", "--no-first-run",
             "--no-default-browser-check", "--autoplay-policy=no-user-gesture-required", "--allow-file-access-from-files",
             f"--user-data-dir={profile}", "about:blank"],
            preexec_fn=wire, pass_fds=tuple(sorted({3, 4, to_child_r, from_child_w})), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        os.close(to_child_r)
        os.close(from_child_w)
        self.buffer = b""
        self.next_id = 0
        self.events: list[dict] = []

    def send(self, method: str, params: dict | None = None, session: str | None = None, timeout: float = 60) -> dict:
        self.next_id += 1
        message = {"id": self.next_id, "method": method, "params": params or {}}
        if session:
            message["sessionId"] = session
        os.write(self.to_child, json.dumps(message).encode() + b"\0")
        deadline = time.monotonic() + timeout
        while True:
            reply = self.read(deadline)
            if reply.get("id") == self.next_id:
                if "error" in reply:
                    raise RuntimeError(f"{method}: {reply['error']}")
                return reply["result"]
            self.events.append(reply)

    def read(self, deadline: float) -> dict:
        import select

        while b"\0" not in self.buffer:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([self.from_child], [], [], left)[0]:
                raise TimeoutError("chromium did not answer")
            chunk = os.read(self.from_child, 1 << 20)
            if not chunk:
                raise RuntimeError("chromium closed the pipe")
            self.buffer += chunk
        message, self.buffer = self.buffer.split(b"\0", 1)
        return json.loads(message)

    def wait_event(self, method: str, timeout: float = 30) -> dict:
        deadline = time.monotonic() + timeout
        while True:
            for event in self.events:
                if event.get("method") == method:
                    return event
            self.events.append(self.read(deadline))

    def close(self) -> None:
        try:
            self.send("Browser.close", timeout=5)
        except Exception:
            pass
        try:
            self.proc.wait(5)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        os.close(self.to_child)
        os.close(self.from_child)


PLAY_ALL = """(async () => {
  const videos = [...document.querySelectorAll('video')];
  const out = [];
  for (const v of videos) {
    if (v.readyState < 3) await new Promise((ok) => { v.addEventListener('canplay', ok, {once: true}); setTimeout(ok, 10000); });
    await v.play().catch((e) => out.push({error: String(e)}));
    const start = v.currentTime;
    await new Promise((ok) => setTimeout(ok, 600));
    out.push({readyState: v.readyState, duration: v.duration, advanced: v.currentTime !== start,
              error: v.error ? v.error.code : null, width: v.videoWidth});
  }
  return out;
})()"""

TEXT_CHECK = """(() => {
  const cell = [...document.querySelectorAll('.prompt-text')].find((e) => e.textContent.includes('onerror'));
  return {text: cell ? cell.textContent : null, imgs: document.querySelectorAll('td.prompt img').length};
})()"""


@pytest.fixture(scope="session")
def chromium_binary():
    binary = shutil.which("chromium") or shutil.which("chromium-browser")
    if binary is None:
        pytest.skip("Debian's chromium is not installed (apt-get install -y chromium); the headless-browser checks need it")
    return binary


def test_page_in_headless_chromium(site, chromium_binary, tmp_path):
    browser = Chromium(chromium_binary, tmp_path / "profile")
    try:
        target = browser.send("Target.createTarget", {"url": "about:blank"})["targetId"]
        session = browser.send("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
        for domain in ("Page", "Runtime", "Log"):
            browser.send(f"{domain}.enable", session=session)
        browser.send("Page.navigate", {"url": (site / "index.html").resolve().as_uri()}, session=session)
        browser.wait_event("Page.loadEventFired")
        played = browser.send("Runtime.evaluate", {"expression": PLAY_ALL, "awaitPromise": True, "returnByValue": True},
                              session=session, timeout=120)["result"]["value"]
        shown = browser.send("Runtime.evaluate", {"expression": TEXT_CHECK, "returnByValue": True}, session=session)["result"]["value"]
        shot = browser.send("Page.captureScreenshot", {"format": "png", "captureBeyondViewport": True}, session=session)
        (site / "screenshot.png").write_bytes(base64.b64decode(shot["data"]))
        time.sleep(0.2)
        errors = [
            e for e in browser.events
            if e.get("method") == "Runtime.exceptionThrown"
            or (e.get("method") == "Runtime.consoleAPICalled" and e["params"]["type"] in ("error", "assert"))
            or (e.get("method") == "Log.entryAdded" and e["params"]["entry"]["level"] == "error")
        ]
        dialogs = [e for e in browser.events if e.get("method") == "Page.javascriptDialogOpening"]
    finally:
        browser.close()
    assert errors == [], errors
    assert dialogs == []
    assert len(played) == 6
    for video in played:
        assert video.get("error") is None, video
        assert video["readyState"] >= 3 and video["duration"] == pytest.approx(9 / 8, abs=0.2) and video["width"] == 32
        assert video["advanced"], video
    assert shown == {"text": f"{XSS} a green circle moving right", "imgs": 0}
