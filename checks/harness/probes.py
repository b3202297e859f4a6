"""Questions about learner objects that only the learner's side can answer.

Loaded with `checks.harness.learner_side.probes()`: under the grader these run in the learner's
worker (they import only the standard library), because identity and types do not cross the
trust boundary: values read from learner objects arrive as copies.
"""


class DataBuffers:
    """Remembers each parameter's .data array object, to ask later whether updates kept it."""

    def __init__(self, params):
        self.params = list(params)
        self.arrays = [p.data for p in self.params]

    def all_kept(self) -> bool:
        return all(p.data is a for p, a in zip(self.params, self.arrays))


def class_names(objects) -> list:
    """[type(o).__name__ for o in objects]."""
    return [type(o).__name__ for o in objects]


def same_object(a, b) -> bool:
    return a is b
