"""tinytorch: the framework you build, assembled from your katas.

`tinytorch.<name>` is the file `<name>.py` of the curriculum module that exports
it (see grading/curriculum.toml). By default that is your kata file in
katas/NN_slug/, so tracebacks point at the code you edit; TINYTORCH_IMPL picks
the reference instead, for all modules or per module (see grading/assembly.py).

    >>> from tinytorch.tensor import Tensor          # katas/01_tensor/tensor.py
    >>> import tinytorch.autograd                     # registers the backward engine

Nothing is copied and nothing is patched: each later module extends an earlier
one only through the hooks the earlier one documents.
"""

from __future__ import annotations

import importlib.abc
import importlib.util
import sys

from grading import assembly


class _CurriculumFinder(importlib.abc.MetaPathFinder):
    """Resolve `tinytorch.<export>` to the kata or reference file chosen by assembly."""

    def find_spec(self, fullname, path=None, target=None):
        prefix, _, export = fullname.partition(".")
        if prefix != __name__ or not export or "." in export:
            return None
        source = assembly.source_file(export)
        if source is None:
            return None  # not a curriculum module: maybe a real submodule (e.g. datasets)
        if not source.is_file():
            raise ModuleNotFoundError(
                f"tinytorch.{export} should be implemented in {source}, which does not exist"
                " (run `kata stubs` to create missing kata files)",
                name=fullname,
            )
        return importlib.util.spec_from_file_location(fullname, source)


if not any(isinstance(f, _CurriculumFinder) for f in sys.meta_path):
    sys.meta_path.insert(0, _CurriculumFinder())
