"""pyproject.toml lists every package of the source tree: setuptools installs only the listed ones,
so a new subpackage missing there is missing from a wheel (an editable install hides that). And the
Comfy Registry package: its fields, the archive `comfy node pack` builds, requirements.txt and the
publish workflow."""
import json
import re
import shutil
import struct
import subprocess
from pathlib import Path

import pytest

tomllib = pytest.importorskip("tomllib")   # Python 3.11+

ROOT = Path(__file__).resolve().parent.parent


def test_every_package_is_in_pyproject():
    listed = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"]
    found = ["ganstyle"] + [".".join(("ganstyle", *init.parent.relative_to(ROOT).parts))
                            for top in ("core", "nodes", "train_cli") for init in (ROOT / top).rglob("__init__.py")]
    assert sorted(listed) == sorted(found)


def test_pyproject_version_is_the_packages():
    """pyproject's [project] version (what pip and ComfyUI's registry read) is the one the package
    reports (``ganstyle.__version__``, kept in core/version.py so the pack reads it relatively)."""
    import ganstyle
    from ganstyle.core.version import __version__

    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert "version" not in project.get("dynamic", [])
    assert project["version"] == ganstyle.__version__ == __version__


# --- The Comfy Registry / ComfyUI-Manager package -------------------------------------------------
# `comfy node pack` / `comfy node publish` (comfy-cli, run by .github/workflows/publish.yml) zip the
# git-tracked files (`git ls-files`) minus those .comfyignore matches (pathspec's gitwildmatch, one
# pattern a stripped line, `#` lines skipped), plus any [tool.comfy] `includes` folders. ComfyUI-Manager
# installs that archive and then requirements.txt.

# what ComfyUI 0.8's own requirements.txt installs (so requirements.txt must not repeat or pin it)
COMFYUI_PROVIDES = {"torch", "torchvision", "torchaudio", "numpy", "pillow", "safetensors", "tqdm", "av",
                    "einops", "scipy", "pyyaml", "psutil", "aiohttp", "transformers", "tokenizers", "kornia",
                    "spandrel", "pydantic"}
# the only "Environment ::" classifiers comfy-cli accepts; any other one makes it drop them all
REGISTRY_ACCELERATORS = {"Environment :: GPU :: NVIDIA CUDA", "Environment :: GPU :: AMD ROCm",
                         "Environment :: GPU :: Intel Arc", "Environment :: NPU :: Huawei Ascend",
                         "Environment :: GPU :: Apple Metal"}
REGISTRY_OS_PREFIXES = ("Microsoft", "POSIX", "MacOS", "OS Independent")
# comfy-cli's check of requires-comfyui (comfy_cli/registry/config_parser.py, validate_version)
REGISTRY_VERSION_PART = re.compile(r"^(?:(==|>=|<=|!=|~=|>|<|<>|=)\s*)?(\d+\.\d+\.\d+(?:-[a-zA-Z0-9]+)?)?$")
DEV_ONLY = ("tests/", "bench/", "docs/", "scripts/", "runs/", ".github/", ".ci/")
# images, video, data sets and weights: only shipped models, their cards and samples (weights/) and
# the example workflows' previews may carry them into the archive
ASSET_SUFFIXES = {".jpg", ".jpeg", ".png", ".webp", ".gif", ".bmp", ".tif", ".tiff", ".mp4", ".mov", ".avi",
                  ".mkv", ".webm", ".safetensors", ".pt", ".pth", ".ckpt", ".bin", ".onnx", ".h5", ".hdf5",
                  ".npy", ".npz", ".zip", ".tar", ".gz", ".tgz", ".parquet", ".csv", ".jsonl"}


def _pyproject() -> dict:
    return tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))


def _requirement_name(line: str) -> str:
    return re.sub(r"[-_.]+", "-", re.match(r"[A-Za-z0-9][A-Za-z0-9._-]*", line.strip()).group()).lower()


def _requirements_txt() -> list[str]:
    lines = (ROOT / "requirements.txt").read_text(encoding="utf-8").splitlines()
    return [line.split("#")[0].strip() for line in lines if line.split("#")[0].strip()]


def _comfyignore_patterns() -> list[str]:
    lines = (ROOT / ".comfyignore").read_text(encoding="utf-8").splitlines()
    return [line.strip() for line in lines if line.strip() and not line.lstrip().startswith("#")]


def _git_paths(*args: str) -> set[str]:
    out = subprocess.run(["git", "--literal-pathspecs", "-C", str(ROOT), "ls-files", "-z", *args],
                         capture_output=True, check=True).stdout.decode("utf-8")
    return {path for path in out.split("\0") if path}


def registry_archive() -> set[str]:
    """The paths the Registry archive would hold if the working tree were committed: git-tracked
    files plus untracked ones .gitignore lets through (on a fresh clone, exactly `git ls-files`),
    minus what .comfyignore matches; with pathspec installed the way comfy-cli matches, otherwise
    with git's own matcher (the same rules for the plain patterns .comfyignore is kept to)."""
    if shutil.which("git") is None:
        pytest.skip("git is not installed")
    top = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--show-toplevel"], capture_output=True, text=True)
    if top.returncode != 0 or Path(top.stdout.strip()).resolve() != ROOT:
        pytest.skip("not a git checkout of the repository")
    tracked, new = _git_paths("-c"), _git_paths("-o", "--exclude-standard")
    files = {path for path in tracked | new if (ROOT / path).is_file()}
    try:
        import pathspec
    except ImportError:
        exclude = f"--exclude-from={ROOT / '.comfyignore'}"
        ignored = _git_paths("-c", "-i", exclude)
        if new:
            ignored |= _git_paths("-o", "-i", exclude, "--", *sorted(new))
    else:
        spec = pathspec.PathSpec.from_lines("gitwildmatch", _comfyignore_patterns())
        ignored = {path for path in files if spec.match_file(path)}
    return files - ignored


def test_comfyignore_keeps_to_patterns_git_and_pathspec_agree_on():
    for pattern in _comfyignore_patterns():
        assert not pattern.startswith(("!", "\\")), f".comfyignore: {pattern!r}: no re-includes or escapes"
    assert "includes" not in _pyproject()["tool"]["comfy"], \
        "[tool.comfy] includes force-adds folders: registry_archive() below does not model it yet"


def test_registry_archive_holds_what_runs_in_comfyui_and_nothing_else():
    archive = registry_archive()
    tops = sorted({path.split("/")[0] for path in archive})
    assert tops == sorted(["LICENSE", "README.md", "__init__.py", "core", "example_workflows", "nodes",
                           "pyproject.toml", "requirements.txt", "train_cli", "weights"]), tops
    leaked = sorted(path for path in archive if path.startswith(DEV_ONLY))
    assert not leaked, leaked
    stray = sorted(path for path in archive if Path(path).suffix.lower() in ASSET_SUFFIXES
                   and not path.startswith(("weights/", "example_workflows/")))
    assert not stray, f"images/data outside weights/ and example_workflows/: {stray}"
    # every source file of the pack ships, and every shipped model is whole
    code = {path for path in _git_paths("-c") | _git_paths("-o", "--exclude-standard")
            if path.startswith(("core/", "nodes/", "train_cli/")) and path.endswith(".py")
            and (ROOT / path).is_file()}
    assert code and code <= archive, sorted(code - archive)
    registry = json.loads((ROOT / "weights" / "registry.json").read_text(encoding="utf-8"))
    shipped = [entry["path"] for entry in registry.values() if isinstance(entry, dict) and "path" in entry]
    assert shipped
    for folder in shipped:
        assert {f"weights/{folder}/model.safetensors", f"weights/{folder}/config.json"} <= archive, folder
    for path in ("__init__.py", "LICENSE", "pyproject.toml", "requirements.txt", "README.md",
                 "weights/registry.json", "nodes/__init__.py", "core/__init__.py"):
        assert path in archive, path
    assert any(path.startswith("example_workflows/") and path.endswith(".json") for path in archive)


def test_pyproject_has_the_registry_fields():
    data = _pyproject()
    project, comfy = data["project"], data["tool"]["comfy"]
    assert re.fullmatch(r"\d+\.\d+\.\d+", project["version"])          # the Registry wants X.Y.Z
    assert comfy["PublisherId"] and comfy["DisplayName"]
    assert all(REGISTRY_VERSION_PART.match(part.strip()) for part in comfy["requires-comfyui"].split(","))
    assert comfy["requires-comfyui"].strip()
    urls = project["urls"]
    assert {"Repository", "Documentation", "Bug Tracker"} <= set(urls)
    repo = urls["Repository"].removeprefix("https://github.com/").rstrip("/")
    # Icon: a square PNG of at most 400x400, at its raw URL on the repository's main branch
    icon = comfy["Icon"]
    prefix = f"https://raw.githubusercontent.com/{repo}/main/"
    assert icon.startswith(prefix) and icon.endswith(".png"), icon
    head = (ROOT / icon.removeprefix(prefix)).read_bytes()[:24]
    assert head[:8] == b"\x89PNG\r\n\x1a\n" and head[12:16] == b"IHDR"
    width, height = struct.unpack(">II", head[16:24])
    assert width == height and 64 <= width <= 400, (width, height)


def test_license_and_classifiers():
    data = _pyproject()
    project = data["project"]
    assert project["license"] == "GPL-3.0-or-later"
    assert "LICENSE" in project["license-files"]
    text = (ROOT / "LICENSE").read_text(encoding="utf-8")
    assert "GNU GENERAL PUBLIC LICENSE" in text[:200] and "Version 3, 29 June 2007" in text[:200]
    assert "END OF TERMS AND CONDITIONS" in text
    # license-files and an SPDX license string need setuptools >= 77, which also refuses a
    # "License ::" classifier beside them
    floor = re.fullmatch(r"setuptools>=(\d+)(\.\d+)*", next(r for r in data["build-system"]["requires"]
                                                          if r.startswith("setuptools")))
    assert floor and int(floor.group(1)) >= 77
    classifiers = project["classifiers"]
    assert not [c for c in classifiers if c.startswith("License ::")]
    accelerators = [c for c in classifiers if c.startswith("Environment ::")]
    assert "Environment :: GPU :: NVIDIA CUDA" in accelerators
    assert set(accelerators) <= REGISTRY_ACCELERATORS, accelerators
    systems = [c.removeprefix("Operating System :: ") for c in classifiers if c.startswith("Operating System ::")]
    assert systems and all(s.startswith(REGISTRY_OS_PREFIXES) for s in systems), systems
    minor = int(re.fullmatch(r">=3\.(\d+)", project["requires-python"]).group(1))
    assert f"Programming Language :: Python :: 3.{minor}" in classifiers


def test_requirements_txt_adds_only_what_comfyui_lacks():
    requirements = _requirements_txt()
    names = [_requirement_name(line) for line in requirements]
    assert not set(names) & COMFYUI_PROVIDES, set(names) & COMFYUI_PROVIDES
    assert not [line for line in requirements if re.search(r"<|==|~=|===", line)], "no upper pins"
    # pyproject (for pip users) is the complete list: requirements.txt's plus what ComfyUI provides
    project = {_requirement_name(dep): dep.replace(" ", "") for dep in _pyproject()["project"]["dependencies"]}
    for line in requirements:
        assert project.get(_requirement_name(line)) == line.replace(" ", ""), line
    assert set(project) - set(names) <= COMFYUI_PROVIDES, set(project) - set(names) - COMFYUI_PROVIDES


def test_publish_workflow_runs_on_pyproject_changes_in_the_main_repository():
    text = (ROOT / ".github" / "workflows" / "publish.yml").read_text(encoding="utf-8")
    push = re.search(r"^  push:\n((?:    .*\n|\s*\n)+)", text, re.MULTILINE)
    assert push, "on.push"
    assert re.search(r"branches:\s*\n\s*- main\b", push.group(1))
    assert re.search(r"paths:\s*\n\s*- \"?pyproject\.toml\"?", push.group(1))
    assert re.search(r"^  workflow_dispatch:", text, re.MULTILINE)
    assert re.search(r"^permissions:", text, re.MULTILINE)
    assert "uses: Comfy-Org/publish-node-action@" in text
    assert "personal_access_token: ${{ secrets.REGISTRY_ACCESS_TOKEN }}" in text
    repo = _pyproject()["project"]["urls"]["Repository"].removeprefix("https://github.com/").rstrip("/")
    assert f"if: ${{{{ github.repository == '{repo}' }}}}" in text
