"""Module 05 check helpers that run beside the learner's code (see checks/harness/learner_side.py)."""

from tinytorch import autograd as ag
from tinytorch.tensor import is_grad_enabled


def grad_mode_decorated():
    """(evaluate, train_step, failing) decorated with no_grad() / enable_grad(), as a user writes them."""

    @ag.no_grad()
    def evaluate(t):
        """Docstring kept."""
        assert not is_grad_enabled()
        return t * 3.0

    @ag.enable_grad()
    def train_step(t):
        return t * 3.0

    @ag.no_grad()
    def failing():
        raise RuntimeError("inside")

    return evaluate, train_step, failing


def cube_backward(grad, out, inputs, saved):
    return (grad * 3 * inputs[0].data ** 2,)


def stop_backward(grad, out, inputs, saved):
    return (None,)


def forget_rules(*ops: str) -> None:
    for op in ops:
        ag.BACKWARD_RULES.pop(op, None)


def array_instead_of_tuple(grad, out, inputs, saved):
    """A common slip: returning the gradient itself instead of a 1-tuple."""
    return grad * 2.0


def one_gradient_for_two_inputs(grad, out, inputs, saved):
    return (grad,)
