"""The docstring examples (``>>>``) of ``ganstyle.core`` and ``ganstyle.nodes`` run as tests.

They are found here rather than with ``--doctest-modules``: pytest would import each file by its
path, i.e. the package under the name of the checkout's folder (``main.core.vgg`` for a folder
named ``main``: a second copy of the package), and the relative imports between ``nodes`` and
``core`` fail when that folder's name is not a Python identifier (``ganstyle-main``). Here every
module is imported by its package name, as users import it. Nothing ComfyUI-only is imported (the
nodes reach ComfyUI only when they run) and bench/ is not searched.
"""
from __future__ import annotations

import doctest
import importlib
import io
import pkgutil

import pytest

PACKAGES = ("ganstyle.core", "ganstyle.nodes")


def _modules():
    for name in PACKAGES:
        package = importlib.import_module(name)
        yield package
        for info in pkgutil.walk_packages(package.__path__, f"{name}."):
            yield importlib.import_module(info.name)


def _examples() -> list:
    finder = doctest.DocTestFinder(exclude_empty=True)
    return [pytest.param(test, id=test.name) for module in _modules() for test in finder.find(module)
            if test.examples]


@pytest.mark.parametrize("example", _examples())
def test_docstring_example(example: doctest.DocTest):
    if all(e.options.get(doctest.SKIP) for e in example.examples):
        pytest.skip("every line is marked +SKIP")
    report = io.StringIO()
    if doctest.DocTestRunner(optionflags=doctest.ELLIPSIS).run(example, out=report.write).failed:
        pytest.fail(report.getvalue(), pytrace=False)
