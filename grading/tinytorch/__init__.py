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



def _install_finder() -> None:
    """Resolve `tinytorch.<export>` to the kata or reference file chosen by grading/assembly.py.

    Kept inside a function so that `tinytorch` itself exposes none of the grader's internals.
    In a grader's trusted process (KATA_TRUSTED) learner files are never loaded: there,
    tinytorch is a proxy for the sandboxed worker (grading/remote.py).
    """
    import importlib.abc
    import importlib.util
    import os
    import sys

    from grading import assembly

    class CurriculumFinder(importlib.abc.MetaPathFinder):
        def find_spec(self, fullname, path=None, target=None):
            prefix, _, export = fullname.partition(".")
            if prefix != "tinytorch" or not export or "." in export:
                return None
            source = assembly.source_file(export)
            if source is None:
                return None  # not a curriculum module: maybe a real submodule (e.g. datasets)
            if os.environ.get("KATA_TRUSTED") == "1":
                raise ImportError(f"tinytorch.{export}: a grader's trusted process never loads learner code"
                                  " (the trust boundary was not set up)", name=fullname)
            if not source.is_file():
                raise ModuleNotFoundError(
                    f"tinytorch.{export} should be implemented in {source}, which does not exist"
                    " (run `kata stubs` to create missing kata files)",
                    name=fullname,
                )
            return importlib.util.spec_from_file_location(fullname, source)

    if not any(type(f).__name__ == "CurriculumFinder" for f in sys.meta_path):
        sys.meta_path.insert(0, CurriculumFinder())


_install_finder()
del _install_finder
