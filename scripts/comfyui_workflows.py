"""Open every example workflow in a running ComfyUI's web UI, check it, run it, take screenshots.

For each ``example_workflows/*.json`` (the files ComfyUI's template browser shows) this script, in a
headless Chromium driven by Playwright:

1. loads the workflow into the graph editor with the frontend's own ``app.loadGraphData``;
2. checks that every node type is registered (no "missing nodes"), that the editor shows the
   widget values the file holds, and that no node is flagged with an error;
3. with ``--run``, queues it and waits until ComfyUI reports it finished without an error;
4. saves a screenshot of the graph (``--shots DIR/NAME.jpg``), after the run when ``--run`` is given,
   and one of the template browser showing the pack's workflows (``DIR/templates.jpg``);
5. with ``--thumbnails DIR``, writes each workflow's template picture from the run's real images.

It exits non-zero if any check fails, naming the workflow, the node and the problem.

    python main.py --cpu --port 8188                       # in ComfyUI, with this pack in custom_nodes/
    python scripts/comfyui_workflows.py --url http://127.0.0.1:8188 --run --shots docs/ui \
        --thumbnails example_workflows

``--set NODE_TYPE.WIDGET=VALUE`` changes a widget before the run in every workflow that has the
node (e.g. a local VGG file when the Hub cannot be reached). Needs ``pip install playwright`` and a
Chromium (``--browser /usr/bin/chromium``, Debian's package, or Playwright's own download).
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

# Runs in the page: load the graph, then report what the editor made of it.
LOAD_AND_INSPECT = """
async (workflow) => {
  const app = window.app ?? window.comfyAPI?.app?.app;
  const registered = window.LiteGraph?.registered_node_types ?? {};
  const missing = workflow.nodes.map(n => n.type).filter(t => !(t in registered));
  await app.loadGraphData(structuredClone(workflow), true, true, null,
                          {showMissingNodesDialog: false, showMissingModelsDialog: false});
  const nodes = app.graph.nodes.map(n => ({
    id: n.id, type: n.type, has_errors: !!n.has_errors,
    widgets: (n.widgets ?? []).filter(w => w.serialize !== false).map(w => w.value),
  }));
  return {missing, nodes};
}
"""

SET_WIDGET = """
([type, name, value]) => {
  const app = window.app ?? window.comfyAPI?.app?.app;
  let changed = 0;
  for (const node of app.graph.nodes.filter(n => n.type === type)) {
    const widget = (node.widgets ?? []).find(w => w.name === name);
    if (!widget) throw new Error(`${type} has no widget '${name}'`);
    widget.value = value; widget.callback?.(value); changed += 1;
  }
  app.graph.setDirtyCanvas(true, true);
  return changed;
}
"""

QUEUE = """
async () => {
  const app = window.app ?? window.comfyAPI?.app?.app;
  const before = (await (await fetch('/history?max_items=10000')).json());
  await app.queuePrompt(0, 1);
  return Object.keys(before);
}
"""


def check_workflow(page, path: Path) -> list[str]:
    """Load ``path`` in the editor; return the problems found (empty = fine)."""
    workflow = json.loads(path.read_text())
    report = page.evaluate(LOAD_AND_INSPECT, workflow)
    problems = [f"{path.name}: node type '{t}' is not registered (missing node)" for t in report["missing"]]
    shown = {n["id"]: n for n in report["nodes"]}
    for node in workflow["nodes"]:
        seen = shown.get(node["id"])
        if seen is None:
            problems.append(f"{path.name}: node {node['id']} ({node['type']}) was dropped by the editor")
            continue
        if seen["has_errors"]:
            problems.append(f"{path.name}: node {node['id']} ({node['type']}) is flagged with an error")
        expected = node.get("widgets_values", [])
        if seen["widgets"] != expected:
            problems.append(f"{path.name}: node {node['id']} ({node['type']}) shows widget values "
                            f"{seen['widgets']}, the file holds {expected}")
    return problems


def run_workflow(page, base_url: str, path: Path, timeout_s: float) -> tuple[list[str], dict]:
    """Queue the loaded graph and wait for its history entry; return the problems and the
    entry's outputs (``{node id: {"images": [{"filename", "subfolder", "type"}]}}``)."""
    import urllib.request

    known = set(page.evaluate(QUEUE))
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        with urllib.request.urlopen(f"{base_url}/history?max_items=10000") as response:
            history = json.load(response)
        new = [entry for key, entry in history.items() if key not in known]
        if new:
            status = new[0].get("status", {})
            if status.get("status_str") == "success" and status.get("completed"):
                return [], new[0].get("outputs", {})
            errors = [m[1].get("exception_message", m[1]) for m in status.get("messages", [])
                      if m[0] == "execution_error"]
            return [f"{path.name}: the run failed: {errors or status}"], {}
        time.sleep(1.0)
    return [f"{path.name}: the run did not finish within {timeout_s:.0f} s"], {}


def fetch_image(base_url: str, filename: str, subfolder: str = "", kind: str = "output"):
    """An image from ComfyUI's /view endpoint as a PIL image."""
    import io
    import urllib.parse
    import urllib.request

    from PIL import Image

    query = urllib.parse.urlencode({"filename": filename, "subfolder": subfolder, "type": kind})
    with urllib.request.urlopen(f"{base_url}/view?{query}") as response:
        data = response.read()
    if Path(filename).suffix.lower() in (".mp4", ".webm", ".mov", ".mkv"):   # a video: its middle frame
        import av
        with av.open(io.BytesIO(data)) as container:
            frames = [f.to_image() for f in container.decode(video=0)]
        return frames[len(frames) // 2].convert("RGB")
    return Image.open(io.BytesIO(data)).convert("RGB")


def make_thumbnail(base_url: str, workflow: dict, outputs: dict, path: Path, side: int = 256) -> None:
    """The template browser's picture: the workflow's input images in a row on top, its result
    below, each a centre crop, ``side`` px square in all (JPEG)."""
    from PIL import Image, ImageOps

    inputs = [fetch_image(base_url, n["widgets_values"][0], kind="input")
              for n in workflow["nodes"] if n["type"] in ("LoadImage", "LoadImageMask", "LoadVideo")]
    results = [fetch_image(base_url, i["filename"], i.get("subfolder", ""), i.get("type", "output"))
               for out in outputs.values() for i in out.get("images", [])]
    if not inputs or not results:
        raise RuntimeError(f"{path.name}: no input or result image to make a thumbnail from")
    canvas = Image.new("RGB", (side, side), "white")
    top = side // 2
    cell = side // len(inputs)
    for i, image in enumerate(inputs):
        canvas.paste(ImageOps.fit(image, (cell, top), Image.LANCZOS), (i * cell, 0))
    canvas.paste(ImageOps.fit(results[0], (side, side - top), Image.LANCZOS), (0, top))
    path.parent.mkdir(parents=True, exist_ok=True)
    canvas.save(path, quality=88)


def prepare_settings(base_url: str) -> None:
    """A fresh ComfyUI greets its first visitor with the template browser (marked as seen here),
    draws a minimap over the graph (hidden) and, zoomed out, drops node text (drawn at any zoom)."""
    import urllib.request

    settings = {"Comfy.TutorialCompleted": True, "Comfy.Minimap.Visible": False,
                "LiteGraph.Canvas.MinFontSizeForLOD": 1}
    request = urllib.request.Request(f"{base_url}/settings", data=json.dumps(settings).encode(),
                                     method="POST", headers={"Content-Type": "application/json"})
    urllib.request.urlopen(request).close()


def templates_screenshot(page, path: Path, category: str) -> None:
    """Open the template browser on the pack's own category (its example workflows) and save it."""
    page.get_by_text("Templates", exact=True).first.click()
    page.get_by_text(category, exact=True).first.click()
    page.wait_for_timeout(2000)          # thumbnails load
    page.screenshot(path=str(path), quality=90)
    page.keyboard.press("Escape")


def parse_setting(text: str) -> tuple[str, str, object]:
    try:
        target, value = text.split("=", 1)
        node_type, widget = target.split(".", 1)
    except ValueError:
        raise argparse.ArgumentTypeError(f"--set wants NODE_TYPE.WIDGET=VALUE, got '{text}'") from None
    try:
        value = json.loads(value)
    except json.JSONDecodeError:
        pass  # a plain string
    return node_type, widget, value


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--url", default="http://127.0.0.1:8188", help="the running ComfyUI")
    parser.add_argument("--workflows", type=Path, nargs="*",
                        default=sorted((ROOT / "example_workflows").glob("*.json")))
    parser.add_argument("--run", action="store_true", help="queue each workflow and wait for it to finish")
    parser.add_argument("--timeout", type=float, default=600, help="seconds a run may take (default 600)")
    parser.add_argument("--shots", type=Path, default=None, help="folder for one screenshot per workflow")
    parser.add_argument("--thumbnails", type=Path, default=None,
                        help="with --run, write each workflow's template thumbnail (inputs over result, "
                             "256 px JPEG) into this folder, e.g. example_workflows")
    parser.add_argument("--set", dest="settings", type=parse_setting, action="append", default=[],
                        metavar="TYPE.WIDGET=VALUE", help="change a widget before running (repeatable)")
    parser.add_argument("--templates-category", default="ComfyUI-ganstyle",
                        help="with --shots, also capture the template browser on this category (the pack's "
                             "folder name; '' skips)")
    parser.add_argument("--browser", default=None, help="Chromium executable (default: Playwright's)")
    parser.add_argument("--size", default="1920x1080", help="browser window, WxH (default 1920x1080)")
    args = parser.parse_args(argv)
    from playwright.sync_api import sync_playwright

    width, height = (int(v) for v in args.size.split("x"))
    prepare_settings(args.url)
    problems: list[str] = []
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=args.browser, headless=True)
        page = browser.new_page(viewport={"width": width, "height": height})
        page.goto(args.url)
        page.wait_for_function("() => (window.app ?? window.comfyAPI?.app?.app)?.graph && window.LiteGraph",
                               timeout=120_000)
        # node definitions register after the app appears; wait for ours (missing ones are reported)
        needed = sorted({n["type"] for path in args.workflows for n in json.loads(path.read_text())["nodes"]})
        try:
            page.wait_for_function("(types) => types.every(t => t in window.LiteGraph.registered_node_types)",
                                   arg=needed, timeout=60_000)
        except Exception:  # a Playwright timeout: check_workflow names what is missing
            pass
        page.keyboard.press("Escape")
        for path in args.workflows:
            found = check_workflow(page, path)
            page.keyboard.press("Escape")
            for node_type, widget, value in args.settings:
                page.evaluate(SET_WIDGET, [node_type, widget, value])
            if args.run and not found:
                failed, outputs = run_workflow(page, args.url, path, args.timeout)
                found += failed
                if args.thumbnails and not failed:
                    make_thumbnail(args.url, json.loads(path.read_text()), outputs,
                                   args.thumbnails / f"{path.stem}.jpg")
            page.mouse.click(width // 2, height - 60)   # focus the canvas, then "." fits the graph in view
            page.keyboard.press(".")
            page.wait_for_timeout(1500)          # let the canvas draw the previews
            if args.shots:
                args.shots.mkdir(parents=True, exist_ok=True)
                page.screenshot(path=str(args.shots / f"{path.stem}.jpg"), quality=90)
            print(f"{path.name}: {'ok' if not found else 'FAILED'}" + (" (ran)" if args.run and not found else ""))
            problems += found
        if args.shots and args.templates_category:
            templates_screenshot(page, args.shots / "templates.jpg", args.templates_category)
        browser.close()
    for problem in problems:
        print(problem, file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    raise SystemExit(main())
