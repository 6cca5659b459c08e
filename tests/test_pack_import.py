"""The pack works where ComfyUI puts it: cloned into custom_nodes/ under any folder name, with only
requirements.txt installed, so no package named ``ganstyle`` exists. ComfyUI imports the folder
under the folder's name; inside the pack only relative imports work (an ``import ganstyle`` once
broke Train Style there with ModuleNotFoundError)."""
import ast
import json
import os
import shutil
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from safetensors.torch import save_file

import ganstyle

from helpers import fill_hub_cache, workflow_world

ROOT = Path(__file__).resolve().parent.parent
TESTS = Path(__file__).resolve().parent
# what a clone of the repository has that the pack uses at run time (tests, bench, scripts and docs aside)
PACK_CODE = ("__init__.py", "core", "nodes", "train_cli")
PACK_DATA = ("weights", "example_workflows")
# A ComfyUI checkout (GANSTYLE_COMFYUI=/path/to/ComfyUI): the pack is then also run on its V3 schema.
COMFYUI = os.environ.get("GANSTYLE_COMFYUI")

# Runs in a fresh interpreter: no package named ganstyle can be imported (as in a ComfyUI install);
# the pack is imported under its folder's name the way ComfyUI's load_custom_node does, then every
# example workflow runs through that pack's node classes (tests/workflow_runner.py, which
# tests/test_workflows.py runs them with too). With a ComfyUI checkout as 4th argument, its
# comfy_api (the V3 node schema) can be imported, and its folder_paths is pointed at the test's folders.
RUN_PACK = textwrap.dedent("""
    import asyncio
    import importlib.util
    import json
    import os
    import sys
    import time
    from pathlib import Path

    sys.modules["ganstyle"] = None   # `import ganstyle` (or `from ganstyle...`) raises ModuleNotFoundError

    import torch
    from safetensors.torch import load_file

    import workflow_runner as wr

    pack_dir, inputs_file, workflows_dir = Path(sys.argv[1]), sys.argv[2], Path(sys.argv[3])
    if len(sys.argv) > 4:   # inside ComfyUI (on CPU), its model and input folders the test's
        sys.path.insert(0, sys.argv[4])
        import comfy.cli_args
        comfy.cli_args.args.cpu = True
        import folder_paths
        models = Path(os.environ["GANSTYLE_MODELS_DIR"])
        folder_paths.models_dir = str(models)
        for name, exts in (("vgg", {".safetensors"}), ("style_transfer", {".safetensors", ".json"})):
            folder_paths.folder_names_and_paths[name] = ([str(models / name)], exts)
        folder_paths.set_input_directory(str(models.parent / "input"))
    torch.set_num_threads(1)
    spec = importlib.util.spec_from_file_location(pack_dir.name, pack_dir / "__init__.py",
                                                  submodule_search_locations=[str(pack_dir)])
    pack = importlib.util.module_from_spec(spec)
    sys.modules[pack_dir.name] = pack
    spec.loader.exec_module(pack)
    # what ComfyUI's loader reads: V1 mappings, else a V3 entry point (never both)
    exports = [name for name in ("NODE_CLASS_MAPPINGS", "comfy_entrypoint") if hasattr(pack, name)]
    if hasattr(pack, "comfy_entrypoint"):
        extension = asyncio.run(pack.comfy_entrypoint())
        assert asyncio.run(extension.get_node_list()) == pack.nodes.NODES

    inputs = {"images": {}, "masks": {}, "clips": {}}
    for key, tensor in load_file(inputs_file).items():
        kind, name = key.split("/", 1)
        inputs[kind][name] = tensor
    times = {}
    for path in sorted(workflows_dir.glob("*.json")):
        start = time.perf_counter()
        wr.use_inputs(**inputs)
        wr.run_workflow(json.loads(path.read_text()), wr.small_overrides(path.stem), pack.nodes.NODE_CLASSES)
        wr.check_saved_result(path.stem)
        times[path.stem] = round(time.perf_counter() - start, 2)
    loaded = sorted(m for m, module in sys.modules.items()
                    if module is not None and (m == "ganstyle" or m.startswith("ganstyle.")))
    print(json.dumps({"version": pack.__version__, "module": pack.__name__, "loaded": loaded, "times": times,
                      "exports": exports, "v3": pack.nodes.comfy_env.V3}))
""")


def pack_files() -> list[Path]:
    """Every .py file of the pack that runs (not tests/, bench/, scripts/)."""
    return [ROOT / "__init__.py"] + sorted(p for top in PACK_CODE[1:] for p in (ROOT / top).rglob("*.py"))


def clone_pack(target: Path) -> Path:
    """The pack's files in ``target`` (another folder name than the package's): code copied, the
    large data folders linked."""
    target.mkdir(parents=True)
    for name in PACK_CODE:
        if (ROOT / name).is_dir():
            shutil.copytree(ROOT / name, target / name, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        else:
            shutil.copy2(ROOT / name, target / name)
    for name in PACK_DATA:
        (target / name).symlink_to(ROOT / name, target_is_directory=True)
    return target


def run_pack(tmp_path: Path, comfyui: str | None = None) -> dict:
    """Every example workflow through a clone of the pack named my_style_pack, in a fresh
    interpreter (RUN_PACK; with ``comfyui``, a ComfyUI checkout's modules importable); its report."""
    inputs = workflow_world(tmp_path)
    if comfyui:   # inside ComfyUI the Hub cache is models/style_transfer/hub: 'vgg19' resolves there
        fill_hub_cache(tmp_path / "models" / "style_transfer" / "hub", "timm/vgg19.tv_in1k",
                       {"model.safetensors": tmp_path / "vgg19.safetensors"})
    save_file({f"{kind}/{name}": tensor.contiguous() for kind, tensors in inputs.items()
               for name, tensor in tensors.items()}, str(tmp_path / "inputs.safetensors"))
    pack = clone_pack(tmp_path / "ComfyUI" / "custom_nodes" / "my_style_pack")
    env = {**os.environ, "GANSTYLE_MODELS_DIR": str(tmp_path / "models"), "PYTHONPATH": str(TESTS),
           "PYTHONDONTWRITEBYTECODE": "1"}
    start = time.perf_counter()
    done = subprocess.run([sys.executable, "-c", RUN_PACK, str(pack), str(tmp_path / "inputs.safetensors"),
                           str(ROOT / "example_workflows" / "api"), *([comfyui] if comfyui else [])],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=900)
    took = time.perf_counter() - start
    assert done.returncode == 0, f"the pack under another name failed:\n{done.stderr[-6000:]}"
    report = json.loads(done.stdout.strip().splitlines()[-1])
    print(f"subprocess took {took:.1f}s; per workflow: {report['times']}")
    assert report["module"] == "my_style_pack" and report["version"] == ganstyle.__version__
    assert report["loaded"] == []
    assert set(report["times"]) == {p.stem for p in (ROOT / "example_workflows" / "api").glob("*.json")}
    # Train Style's run reports the pack's version (read by a relative import)
    run_info = json.loads((tmp_path / "models" / "style_transfer" / "my-style.run" / "run_info.json").read_text())
    assert run_info["ganstyle_version"] == ganstyle.__version__
    return report


def test_example_workflows_run_with_the_pack_under_another_folder_name(tmp_path):
    report = run_pack(tmp_path)
    # no ComfyUI with the V3 schema here: the nodes are V1 nodes, exported as NODE_CLASS_MAPPINGS only
    assert not report["v3"] and report["exports"] == ["NODE_CLASS_MAPPINGS"]


@pytest.mark.skipif(not COMFYUI, reason="set GANSTYLE_COMFYUI to a ComfyUI checkout (0.3.4x or later)")
def test_in_a_comfyui_with_the_v3_schema_the_pack_is_one_v3_extension(tmp_path):
    """Where comfy_api.latest can be imported, the root module exports comfy_entrypoint and no
    NODE_CLASS_MAPPINGS (ComfyUI would load those instead), and the workflows run through the
    nodes built on ComfyUI's own V3 schema."""
    report = run_pack(tmp_path, COMFYUI)
    assert report["v3"] and report["exports"] == ["comfy_entrypoint"]


def test_the_pack_never_imports_itself_by_package_name():
    """Inside the pack, imports of its own modules are relative: ``import ganstyle`` /
    ``from ganstyle... import`` fail where the pack is a ComfyUI custom-node folder."""
    found = []
    for path in pack_files():
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                modules = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0:
                modules = [node.module or ""]
            else:
                continue
            found += [f"{path.relative_to(ROOT)}:{node.lineno}: {m}" for m in modules
                      if m == "ganstyle" or m.startswith("ganstyle.")]
    assert len(pack_files()) > 20
    assert not found, "absolute imports of the pack (use relative ones):\n" + "\n".join(found)
