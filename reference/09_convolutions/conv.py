"""Module 09 - Convolutions: one small filter slid over the whole image, learned by backprop.

A convolutional layer applies the same (C_in x kH x kW) filter at every position of an image, so
it has few parameters, sees local patterns, and finds a pattern wherever it appears. Pooling
then shrinks the feature maps; batch normalisation keeps their scale under control.

This module gives tinytorch (layout NCHW: batch, channels, height, width, as PyTorch):

    conv2d(x, weight, bias=None, stride=1, padding=0, dilation=1, groups=1)
                        torch.nn.functional.conv2d: padding an int, a pair, "same" or "valid"   (op "conv2d")
    Conv2d(in_channels, out_channels, kernel_size, stride=1, padding=0, dilation=1, groups=1,
           bias=True, generator=None)                     torch.nn.Conv2d (names, shapes, initialisation)
    max_pool2d(x, kernel_size, stride=None, padding=0)    / MaxPool2d   (op "max_pool2d")
    avg_pool2d(x, kernel_size, stride=None, padding=0)    / AvgPool2d   (op "avg_pool2d", count_include_pad)
    batch_norm(x, running_mean, running_var, weight=None, bias=None, training=False, momentum=0.1, eps=1e-5)
                        torch.nn.functional.batch_norm                                           (op "batch_norm")
    BatchNorm2d(num_features, eps=1e-5, momentum=0.1, affine=True, track_running_stats=True)

Module 03's Flatten turns the last feature maps into vectors for a Linear layer; it is reused,
not redefined here.

How conv2d is computed (im2col + one GEMM): every receptive field of the padded input is copied
into a column of a matrix `cols` of shape (C_in*kH*kW, N*OH*OW) (a strided VIEW of the input,
np.lib.stride_tricks.as_strided, then one contiguous copy); the convolution is then the matrix
product weight (C_out, C_in*kH*kW) @ cols. Groups split both into `groups` independent products,
run as one batched np.matmul. The backward pass is two more GEMMs (dW = dOut @ cols^T,
dcols = W^T @ dOut) and col2im: each of the kH*kW kernel offsets adds its slice of dcols back
into a strided view of the input's gradient (a loop over kernel offsets, never over pixels).

Four new ops register their backward rules through module 05's ``register_backward`` hook:
"conv2d", "max_pool2d" (the gradient goes to the first maximum of each window, as PyTorch),
"avg_pool2d" and "batch_norm" (the fused batch-norm backward).

BatchNorm2d's running statistics are buffers, not Parameters (the optimizer never sees them):
float32 numpy arrays `running_mean`, `running_var` and a 0-d int64 array `num_batches_tracked`,
registered with module 03's register_buffer, so state_dict() saves them under torch's keys.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from numpy.lib.stride_tricks import as_strided

from tinytorch.autograd import register_backward
from tinytorch.layers import Module, Parameter, default_generator
from tinytorch.tensor import FLOAT_DTYPES, Tensor

# ----------------------------------------------------------------------------
# Helpers (given)
# ----------------------------------------------------------------------------


def _as_tensor(x: Any) -> Tensor:
    """Tensors pass through; numpy arrays and Python data are wrapped (given helper)."""
    return x if isinstance(x, Tensor) else Tensor(x)


def _is_int(value: Any) -> bool:
    return isinstance(value, (int, np.integer)) and not isinstance(value, bool)


def _pair(value: Any, name: str, op: str, minimum: int = 1) -> tuple[int, int]:
    """An int or a pair of ints (each >= minimum) -> (h, w); ValueError naming `name` otherwise (given)."""
    pair = (value, value) if _is_int(value) else tuple(value) if isinstance(value, (tuple, list)) else ()
    if len(pair) != 2 or not all(_is_int(v) and v >= minimum for v in pair):
        raise ValueError(f"{op}: {name} must be an int or a pair of ints >= {minimum}, got {value!r}")
    return int(pair[0]), int(pair[1])


def _check_input(op: str, x: Tensor) -> None:
    """x must be a 4-D float Tensor (N, C, H, W) (given)."""
    if x.ndim != 4:
        raise ValueError(f"{op}: expected input with 4 dims (N, C, H, W), got shape {x.shape}")
    if x.dtype not in FLOAT_DTYPES:
        raise TypeError(f"{op}: input must be float32 or float64, got dtype {x.dtype}")


def _out_size(size: int, pad_total: int, kernel: int, stride: int, dilation: int) -> int:
    """floor((size + pad_total - dilation*(kernel-1) - 1) / stride) + 1: positions of the window (given)."""
    return (size + pad_total - dilation * (kernel - 1) - 1) // stride + 1


def _pad(x: np.ndarray, pads: tuple[int, int, int, int], value: float = 0.0) -> np.ndarray:
    """x (N, C, H, W) padded by (top, bottom, left, right) with `value`; x itself when no padding (given)."""
    top, bottom, left, right = pads
    if not any(pads):
        return x
    N, C, H, W = x.shape
    shape = (N, C, H + top + bottom, W + left + right)
    out = np.zeros(shape, dtype=x.dtype) if value == 0 else np.full(shape, value, dtype=x.dtype)
    out[:, :, top:top + H, left:left + W] = x
    return out


def _crop(xp: np.ndarray, pads: tuple[int, int, int, int]) -> np.ndarray:
    """Undo _pad: the (H, W) interior of a padded (N, C, Hp, Wp) array (a view) (given)."""
    top, bottom, left, right = pads
    return xp[:, :, top:xp.shape[2] - bottom, left:xp.shape[3] - right]


def _reach(kernel: tuple[int, int], dilation: tuple[int, int]) -> tuple[int, int, int, int]:
    """How far a dilated kernel reaches past its first pixel, as (top, bottom, left, right) pads (given)."""
    return (dilation[0] * (kernel[0] - 1),) * 2 + (dilation[1] * (kernel[1] - 1),) * 2


def _offset_view(xp: np.ndarray, i: int, j: int, out_hw: tuple[int, int], stride: tuple[int, int]) -> np.ndarray:
    """The (N, C, OH, OW) view of xp that kernel offset (i, j) touches: rows i, i+sh, ..., cols j, j+sw, ... (given).

    `i`, `j` are offsets in input pixels (already multiplied by the dilation).
    """
    (OH, OW), (sh, sw) = out_hw, stride
    return xp[:, :, i:i + sh * (OH - 1) + 1:sh, j:j + sw * (OW - 1) + 1:sw]


# ----------------------------------------------------------------------------
# im2col and col2im: the two data movements behind a fast convolution
# ----------------------------------------------------------------------------


def im2col(xp: np.ndarray, kernel: tuple[int, int], stride: tuple[int, int], dilation: tuple[int, int],
           out_hw: tuple[int, int]) -> np.ndarray:
    """Every receptive field of the (already padded) input as a column: shape (C, kH, kW, N, OH, OW), contiguous.

    cols[c, i, j, n, oh, ow] = xp[n, c, oh*sh + i*dh, ow*sw + j*dw]

    Reshaped to (C*kH*kW, N*OH*OW), a convolution is weight.reshape(C_out, -1) @ cols.
    Build a 6-D strided VIEW with as_strided (no copy: each axis is a step through xp's memory),
    then make ONE contiguous copy. No Python loop over pixels.
    """
    # TODO: 1. sN, sC, sH, sW = xp.strides (bytes). The view's axes (C, kH, kW, N, OH, OW) step by
    #          sC, dh*sH, dw*sW, sN, sh*sH, sw*sW.
    # TODO: 2. as_strided(xp, shape, strides, writeable=False), then np.ascontiguousarray.
    # BEGIN SOLUTION
    N, C = xp.shape[:2]
    (kh, kw), (sh, sw), (dh, dw), (OH, OW) = kernel, stride, dilation, out_hw
    sN, sC, sH, sW = xp.strides
    view = as_strided(xp, shape=(C, kh, kw, N, OH, OW),
                      strides=(sC, dh * sH, dw * sW, sN, sh * sH, sw * sW), writeable=False)
    return np.ascontiguousarray(view)
    # END SOLUTION


def col2im(dcols: np.ndarray, padded_shape: tuple[int, ...], stride: tuple[int, int],
           dilation: tuple[int, int]) -> np.ndarray:
    """The adjoint of im2col: add every column entry back where it was read from.

    dcols: (C, kH, kW, N, OH, OW). Returns an array of padded_shape (N, C, Hp, Wp) where
    out[n, c, oh*sh + i*dh, ow*sw + j*dw] += dcols[c, i, j, n, oh, ow]. Overlapping windows ADD.
    Loop over the kH*kW kernel offsets only: for each, one vectorised += into a strided view.
    """
    # TODO: out = zeros(padded_shape); its transpose(1, 0, 2, 3) is (C, N, Hp, Wp) like dcols[:, i, j];
    #       for each offset (i, j): _offset_view(that transpose, i*dh, j*dw, (OH, OW), stride) += dcols[:, i, j].
    # BEGIN SOLUTION
    C, kh, kw, N, OH, OW = dcols.shape
    out = np.zeros(padded_shape, dtype=dcols.dtype)
    by_channel = out.transpose(1, 0, 2, 3)
    for i in range(kh):
        for j in range(kw):
            _offset_view(by_channel, i * dilation[0], j * dilation[1], (OH, OW), stride)[...] += dcols[:, i, j]
    return out
    # END SOLUTION


# ----------------------------------------------------------------------------
# conv2d
# ----------------------------------------------------------------------------


def _conv_padding(padding: Any, kernel: tuple[int, int], stride: tuple[int, int],
                  dilation: tuple[int, int]) -> tuple[int, int, int, int]:
    """padding (int, pair, "same", "valid") -> (top, bottom, left, right).

    "valid" is no padding. "same" (stride 1 only, like torch) pads dilation*(k-1) in total per
    side pair: half on the top/left, the odd extra pixel on the bottom/right (torch's choice).
    """
    # TODO: strings first ("valid", "same" - a ValueError for strided "same" naming the stride, and for any
    #       other string); an int or pair goes through _pair(..., minimum=0).
    # BEGIN SOLUTION
    if isinstance(padding, str):
        if padding == "valid":
            return 0, 0, 0, 0
        if padding != "same":
            raise ValueError(f"conv2d: padding must be an int, a pair, 'same' or 'valid', got {padding!r}")
        if stride != (1, 1):
            raise ValueError(f"conv2d: padding='same' is not supported for strided convolutions (stride={stride})")
        total_h, total_w = dilation[0] * (kernel[0] - 1), dilation[1] * (kernel[1] - 1)
        return total_h // 2, total_h - total_h // 2, total_w // 2, total_w - total_w // 2
    ph, pw = _pair(padding, "padding", "conv2d", minimum=0)
    return ph, ph, pw, pw
    # END SOLUTION


def _conv_gemm(xp: np.ndarray, weight: np.ndarray, stride: tuple[int, int], dilation: tuple[int, int],
               out_hw: tuple[int, int], groups: int) -> tuple[np.ndarray, np.ndarray]:
    """The convolution of the padded input xp (N, C, Hp, Wp) with weight (C_out, C/groups, kH, kW) as
    im2col + ONE batched GEMM over the groups: W (G, C_out/G, K) @ cols (G, K, N*OH*OW).

    Returns (by_channel, cols): the result as (C_out, N, OH*OW), channels first as the GEMM leaves it,
    and cols (G, K, N*OH*OW), which the backward pass needs for dW.
    """
    # TODO: cols = im2col(...) reshaped to (G, K, N*OH*OW), K = C/G*kH*kW; one np.matmul with the weight
    #       reshaped to (G, C_out/G, K); reshape the product to (C_out, N, OH*OW).
    # BEGIN SOLUTION
    N, (C_out, _, kh, kw), G = xp.shape[0], weight.shape, groups
    cols = im2col(xp, (kh, kw), stride, dilation, out_hw).reshape(G, -1, N * out_hw[0] * out_hw[1])
    by_channel = np.matmul(weight.reshape(G, C_out // G, -1), cols)
    return by_channel.reshape(C_out, N, -1), cols
    # END SOLUTION


def _to_nchw(by_channel: np.ndarray, N: int, out_hw: tuple[int, int], bias: np.ndarray | None = None) -> np.ndarray:
    """(C, N, OH*OW) -> a new contiguous (N, C, OH, OW) array, with bias (C,) added during the copy (given)."""
    out = np.empty((N, by_channel.shape[0], by_channel.shape[2]), dtype=by_channel.dtype)
    if bias is None:
        np.copyto(out, by_channel.transpose(1, 0, 2))
    else:
        np.add(by_channel.transpose(1, 0, 2), bias.reshape(-1, 1), out=out)
    return out.reshape(N, -1, *out_hw)


def conv2d(x: Any, weight: Any, bias: Any = None, stride: Any = 1, padding: Any = 0, dilation: Any = 1,
           groups: int = 1) -> Tensor:
    """torch.nn.functional.conv2d: out[n, o] = bias[o] + sum over the group's channels c and kernel (i, j) of
    weight[o, c, i, j] * xpadded[n, c, oh*sh + i*dh, ow*sw + j*dw].

    x:        (N, C_in, H, W) float32/float64.
    weight:   (C_out, C_in / groups, kH, kW), same dtype as x.   bias: (C_out,) or None.
    stride, dilation: int or (h, w) pair, >= 1.   padding: int or pair >= 0, "same" (stride 1) or "valid".
    groups:   C_in and C_out split into `groups` independent convolutions (groups == C_in: depthwise).
    Returns (N, C_out, OH, OW) in x's dtype, OH = floor((H + pad_h - dh*(kH-1) - 1) / sh) + 1.
    Recorded as op "conv2d" with inputs (x, weight[, bias]).
    Errors (ValueError unless noted), each naming the numbers as in these examples:
      input not 4-D            "expected input with 4 dims (N, C, H, W), got shape (4, 5, 5)"
      weight not 4-D           "expected weight with 4 dims (...), got shape (6, 2, 3)"
      dtypes (TypeError)       "input (float32) and weight (float64) must have the same dtype"; an int
                               input names its dtype ("int64")
      groups                   "groups must be a positive integer, got 0";
                               "groups=4 must divide out_channels=6 (weight shape (6, 1, 3, 3))"
      channel mismatch         "input has 4 channels (shape ...) but weight of shape ... with groups=1
                               expects 2 channels"
      bias                     "bias must have shape (6,) (out_channels), got (5,)"
      stride, dilation, padding: _pair's and _conv_padding's messages name the argument ("stride",
                               "padding"; a strided "same" says "strided")
      kernel too large         "kernel size (dilated) (7, 7) is larger than the padded input (5, 5) ..."
    """
    x, weight = _as_tensor(x), _as_tensor(weight)
    bias = None if bias is None else _as_tensor(bias)
    # TODO: 1. Validate (see the docstring): _check_input, weight.ndim == 4, dtypes, groups, channels, bias,
    #          stride/dilation with _pair, padding with _conv_padding, output size >= 1.
    # TODO: 2. xp = _pad(x.data, pads); by_channel, cols = _conv_gemm(...) (C_out, N, OH*OW): the GEMM
    #          leaves channels first.
    # TODO: 3. _to_nchw(by_channel, N, (OH, OW), bias) reorders it to (N, C_out, OH, OW), adding the bias.
    # TODO: 4. Record "conv2d" with inputs (x, weight[, bias]); save cols (backward's dW needs it), the
    #          padded shape, pads, stride, dilation, groups.
    # BEGIN SOLUTION
    _check_input("conv2d", x)
    if weight.ndim != 4:
        raise ValueError(f"conv2d: expected weight with 4 dims (out_channels, in_channels/groups, kH, kW),"
                         f" got shape {weight.shape}")
    if weight.dtype != x.dtype:
        raise TypeError(f"conv2d: input ({x.dtype}) and weight ({weight.dtype}) must have the same dtype")
    if not _is_int(groups) or groups < 1:
        raise ValueError(f"conv2d: groups must be a positive integer, got {groups!r}")
    N, C, H, W = x.shape
    C_out, C_per_group, kh, kw = weight.shape
    if C_out % groups:
        raise ValueError(f"conv2d: groups={groups} must divide out_channels={C_out} (weight shape {weight.shape})")
    if C != C_per_group * groups:
        raise ValueError(f"conv2d: input has {C} channels (shape {x.shape}) but weight of shape {weight.shape}"
                         f" with groups={groups} expects {C_per_group * groups} channels")
    if bias is not None and bias.shape != (C_out,):
        raise ValueError(f"conv2d: bias must have shape ({C_out},) (out_channels), got {bias.shape}")
    if bias is not None and bias.dtype != x.dtype:
        raise TypeError(f"conv2d: input ({x.dtype}) and bias ({bias.dtype}) must have the same dtype")
    stride = _pair(stride, "stride", "conv2d")
    dilation = _pair(dilation, "dilation", "conv2d")
    pads = _conv_padding(padding, (kh, kw), stride, dilation)
    Hp, Wp = H + pads[0] + pads[1], W + pads[2] + pads[3]
    span_h, span_w = dilation[0] * (kh - 1) + 1, dilation[1] * (kw - 1) + 1
    if span_h > Hp or span_w > Wp:
        raise ValueError(f"conv2d: kernel size (dilated) ({span_h}, {span_w}) is larger than the padded input"
                         f" ({Hp}, {Wp}) (input {x.shape}, padding {pads[0]}+{pads[1]}, {pads[2]}+{pads[3]})")
    OH = _out_size(H, pads[0] + pads[1], kh, stride[0], dilation[0])
    OW = _out_size(W, pads[2] + pads[3], kw, stride[1], dilation[1])
    xp = _pad(x.data, pads)
    G = groups
    by_channel, cols = _conv_gemm(xp, weight.data, stride, dilation, (OH, OW), G)
    out = _to_nchw(by_channel, N, (OH, OW), None if bias is None else bias.data)
    inputs = (x, weight) if bias is None else (x, weight, bias)
    return Tensor.from_op(out, "conv2d", inputs, cols=cols, padded_shape=xp.shape, pads=pads, stride=stride,
                          dilation=dilation, groups=G, kernel=(kh, kw))
    # END SOLUTION


def _input_grad_as_conv(grad: np.ndarray, weight: np.ndarray, x_shape: tuple[int, ...],
                        pads: tuple[int, int, int, int], dilation: tuple[int, int]) -> np.ndarray:
    """dL/dx of a stride-1, ungrouped conv2d, computed as a convolution (the "transposed convolution").

    Each input pixel receives grad[o, oh, ow] * weight[o, c, i, j] from every output its kernel offset
    (i, j) reached, so dx is grad padded by the kernel's reach (dilation*(k-1)) minus the forward padding,
    correlated with the weight flipped in space with its two channel axes swapped: (C_in, C_out, kH, kW).
    Its cols are (C_out*kH*kW, N*H*W): cheaper than the dcols + col2im route, (C_in*kH*kW, N*OH*OW) and
    kH*kW strided adds, when C_out <= C_in. Only for stride 1, groups 1 and every pad <= the reach (the
    caller checks: dOut cannot be padded by a negative amount). Returns (N, C_in, H, W), contiguous.
    """
    # TODO (optional: a faster route; the checks accept either):
    #       gp = _pad(grad, (reach_top - pad_top, reach_bottom - pad_bottom, reach_left - pad_left, ...)):
    #       each side pairs with the SAME side (with "same" padding and an even kernel, top != bottom);
    #       flipped = weight[:, :, ::-1, ::-1] with axes 0 and 1 swapped, contiguous;
    #       _conv_gemm(gp, flipped, (1, 1), dilation, (H, W), 1); _to_nchw.
    # BEGIN SOLUTION
    N, C_in, H, W = x_shape
    reach = _reach(weight.shape[2:], dilation)
    gp = _pad(grad, tuple(r - p for r, p in zip(reach, pads)))
    flipped = np.ascontiguousarray(weight[:, :, ::-1, ::-1].transpose(1, 0, 2, 3))
    by_channel, _ = _conv_gemm(gp, flipped, (1, 1), dilation, (H, W), 1)
    return _to_nchw(by_channel, N, (H, W))
    # END SOLUTION


@register_backward("conv2d")
def _conv2d_backward(grad, out, inputs, saved):
    # With gT = grad as (groups, C_out/groups, N*OH*OW) (channels first, contiguous):
    #   dW    = gT @ cols^T = (cols @ gT^T)^T  -> (groups, C_out/groups, K) -> weight's shape
    #   dx    = stride 1, groups 1, C_out <= C_in, pads <= the kernel's reach: _input_grad_as_conv
    #           otherwise: dcols = W^T @ gT -> (groups, K, N*OH*OW) -> col2im -> crop the padding
    #   dbias = grad summed over N, OH, OW
    # Compute each only if that input requires grad (the first layer's input never does).
    # BEGIN SOLUTION
    x, weight = inputs[0], inputs[1]
    cols, G, pads, dilation = saved["cols"], saved["groups"], saved["pads"], saved["dilation"]
    C_out, C_in, (kh, kw) = weight.shape[0], x.shape[1], saved["kernel"]
    N, OH, OW = grad.shape[0], grad.shape[2], grad.shape[3]
    gT = np.ascontiguousarray(grad.transpose(1, 0, 2, 3)).reshape(G, C_out // G, N * OH * OW)
    grads: list[Any] = [None, None]
    if weight.requires_grad:
        grads[1] = np.matmul(cols, gT.transpose(0, 2, 1)).transpose(0, 2, 1).reshape(weight.shape)
    if x.requires_grad and saved["stride"] == (1, 1) and G == 1 and C_out <= C_in and all(
            p <= r for p, r in zip(pads, _reach((kh, kw), dilation))):
        grads[0] = _input_grad_as_conv(grad, weight.data, x.shape, pads, dilation)
    elif x.requires_grad:
        w = weight.data.reshape(G, C_out // G, -1)
        dcols = np.matmul(w.transpose(0, 2, 1), gT).reshape(C_in, kh, kw, N, OH, OW)
        dxp = col2im(dcols, saved["padded_shape"], saved["stride"], dilation)
        grads[0] = _crop(dxp, pads)
    if len(inputs) == 3:
        grads.append(grad.sum(axis=(0, 2, 3)))
    return tuple(grads)
    # END SOLUTION


class Conv2d(Module):
    """torch.nn.Conv2d: conv2d with a learned weight (C_out, C_in/groups, kH, kW) and bias (C_out,).

    kernel_size, stride, dilation: int or pair; padding: int, pair, "same" (stride 1) or "valid".
    Initialisation as torch (kaiming_uniform_ with a = sqrt(5)): weight and bias ~ U(-b, b),
    b = 1 / sqrt(fan_in), fan_in = C_in/groups * kH * kW; the weight is drawn first, then the bias,
    from `generator` (default: module 03's default generator). Parameters are float32.
    Errors (ValueError naming the values): non-positive sizes, groups not dividing both channel
    counts, padding="same" with stride > 1.
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: Any, stride: Any = 1, padding: Any = 0,
                 dilation: Any = 1, groups: int = 1, bias: bool = True, generator: np.random.Generator | None = None):
        super().__init__()
        # TODO: 1. Validate the channel counts and groups (ValueError "in_channels must be a positive integer,
        #          got 0"; "groups=3 must divide in_channels=4 and out_channels=6"); normalise kernel_size,
        #          stride, dilation with _pair;
        #          check padding once with _conv_padding (it raises for bad values and strided "same").
        # TODO: 2. Draw weight then bias (or None) from U(-1/sqrt(fan_in), 1/sqrt(fan_in)), float32.
        # TODO: 3. Keep in_channels, out_channels, kernel_size, stride, padding (a pair, or the string),
        #          dilation, groups.
        # BEGIN SOLUTION
        for name, size in (("in_channels", in_channels), ("out_channels", out_channels), ("groups", groups)):
            if not _is_int(size) or size <= 0:
                raise ValueError(f"Conv2d: {name} must be a positive integer, got {size!r}")
        if in_channels % groups or out_channels % groups:
            raise ValueError(f"Conv2d: groups={groups} must divide in_channels={in_channels} and"
                             f" out_channels={out_channels}")
        self.in_channels, self.out_channels, self.groups = int(in_channels), int(out_channels), int(groups)
        self.kernel_size = _pair(kernel_size, "kernel_size", "Conv2d")
        self.stride = _pair(stride, "stride", "Conv2d")
        self.dilation = _pair(dilation, "dilation", "Conv2d")
        _conv_padding(padding, self.kernel_size, self.stride, self.dilation)
        self.padding = padding if isinstance(padding, str) else _pair(padding, "padding", "Conv2d", minimum=0)
        rng = default_generator() if generator is None else generator
        fan_in = self.in_channels // self.groups * self.kernel_size[0] * self.kernel_size[1]
        bound = 1.0 / math.sqrt(fan_in)
        shape = (self.out_channels, self.in_channels // self.groups) + self.kernel_size
        self.weight = Parameter(rng.uniform(-bound, bound, shape).astype(np.float32))
        self.bias = Parameter(rng.uniform(-bound, bound, self.out_channels).astype(np.float32)) if bias else None
        # END SOLUTION

    def forward(self, x: Tensor) -> Tensor:
        # TODO: conv2d with this layer's parameters and settings.
        # BEGIN SOLUTION
        return conv2d(x, self.weight, self.bias, self.stride, self.padding, self.dilation, self.groups)
        # END SOLUTION

    def extra_repr(self) -> str:
        text = f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, stride={self.stride}"
        if self.padding != (0, 0):
            text += f", padding={self.padding!r}" if isinstance(self.padding, str) else f", padding={self.padding}"
        if self.dilation != (1, 1):
            text += f", dilation={self.dilation}"
        if self.groups != 1:
            text += f", groups={self.groups}"
        return text + ("" if self.bias is not None else ", bias=False")


# ----------------------------------------------------------------------------
# Pooling
# ----------------------------------------------------------------------------


def _pool_args(op: str, x: Tensor, kernel_size: Any, stride: Any, padding: Any) -> tuple:
    """Validate a pooling call -> (kernel, stride, padding pair, (OH, OW)) (given).

    stride defaults to kernel_size; padding may be at most half the kernel (torch's rule).
    """
    _check_input(op, x)
    kernel = _pair(kernel_size, "kernel_size", op)
    stride = kernel if stride is None else _pair(stride, "stride", op)
    pad = _pair(padding, "padding", op, minimum=0)
    if pad[0] > kernel[0] // 2 or pad[1] > kernel[1] // 2:
        raise ValueError(f"{op}: pad should be at most half of effective kernel size, but got padding={pad}"
                         f" and kernel_size={kernel}")
    OH = _out_size(x.shape[2], 2 * pad[0], kernel[0], stride[0], 1)
    OW = _out_size(x.shape[3], 2 * pad[1], kernel[1], stride[1], 1)
    if OH < 1 or OW < 1:
        raise ValueError(f"{op}: input of shape {x.shape} is too small for kernel_size={kernel} with"
                         f" padding={pad}: output size ({OH}, {OW})")
    return kernel, stride, pad, (OH, OW)


def max_pool2d(x: Any, kernel_size: Any, stride: Any = None, padding: Any = 0) -> Tensor:
    """torch.nn.functional.max_pool2d: the maximum of each (kH, kW) window.

    x: (N, C, H, W) float. stride defaults to kernel_size. padding (<= kernel/2) pads with -inf, so a
    padded position never wins. Returns (N, C, OH, OW), OH = floor((H + 2p - kH) / sh) + 1.
    Backward: each output's gradient goes to ONE input, the arg-max of its window; on ties the FIRST
    maximum in window order (row by row), as PyTorch. Overlapping windows may pick the same input: add.
    Recorded as op "max_pool2d" (saved: the padded input, to find each window's arg-max again in backward).
    """
    x = _as_tensor(x)
    # TODO: validate with _pool_args. xp = _pad(x.data, (ph, ph, pw, pw), -inf); out = the elementwise
    #       maximum (np.maximum, in place) of the kH*kW strided views _offset_view(xp, i, j, ...): a loop
    #       over kernel offsets, never over pixels. Record "max_pool2d" saving xp (the backward finds the
    #       arg-max again) and the settings.
    # BEGIN SOLUTION
    kernel, stride, pad, out_hw = _pool_args("max_pool2d", x, kernel_size, stride, padding)
    (kh, kw), (ph, pw) = kernel, pad
    xp = _pad(x.data, (ph, ph, pw, pw), -np.inf)
    out = _offset_view(xp, 0, 0, out_hw, stride).copy()
    for i in range(kh):
        for j in range(kw):
            if i or j:
                np.maximum(out, _offset_view(xp, i, j, out_hw, stride), out=out)
    return Tensor.from_op(out, "max_pool2d", (x,), xp=xp, pads=(ph, ph, pw, pw), kernel=kernel, stride=stride)
    # END SOLUTION


@register_backward("max_pool2d")
def _max_pool2d_backward(grad, out, inputs, saved):
    # Walk the kernel offsets in window order (row by row) keeping `free` = the outputs whose arg-max is
    # not found yet: at offset (i, j), hit = (view == out) & free is where this offset holds the FIRST
    # maximum; those outputs send their gradient there (view of dxp += grad * hit) and stop being free.
    # Overlapping windows may pick the same input: the += adds. Crop the padding at the end.
    # BEGIN SOLUTION
    xp, (kh, kw), stride = saved["xp"], saved["kernel"], saved["stride"]
    out_hw = grad.shape[2:]
    overlapping = stride[0] < kh or stride[1] < kw
    dxp = np.zeros(xp.shape, dtype=grad.dtype)
    free = np.ones(grad.shape, dtype=np.bool_)
    for i in range(kh):
        for j in range(kw):
            hit = np.equal(_offset_view(xp, i, j, out_hw, stride), out.data)
            hit &= free
            free ^= hit  # hit is a subset of free: this clears exactly the outputs just served
            view = _offset_view(dxp, i, j, out_hw, stride)
            if overlapping:
                view += grad * hit
            else:  # windows never share a pixel: each view is written once (2.5x faster than +=)
                np.multiply(grad, hit, out=view)
    return (_crop(dxp, saved["pads"]),)
    # END SOLUTION


def avg_pool2d(x: Any, kernel_size: Any, stride: Any = None, padding: Any = 0) -> Tensor:
    """torch.nn.functional.avg_pool2d with count_include_pad=True (torch's default): the mean of each
    window of the ZERO-padded input, always divided by kH*kW.

    x: (N, C, H, W) float. stride defaults to kernel_size; padding <= kernel/2.
    Recorded as op "avg_pool2d"; its backward spreads grad / (kH*kW) over each window (windows add).
    """
    x = _as_tensor(x)
    # TODO: validate with _pool_args; sum the kH*kW strided views _offset_view(xp, i, j, ...) (a loop over
    #       kernel offsets), divide by kH*kW, keep x's dtype, record "avg_pool2d".
    # BEGIN SOLUTION
    kernel, stride, pad, out_hw = _pool_args("avg_pool2d", x, kernel_size, stride, padding)
    (kh, kw), (ph, pw) = kernel, pad
    xp = _pad(x.data, (ph, ph, pw, pw))
    out = np.zeros(x.shape[:2] + out_hw, dtype=x.dtype)
    for i in range(kh):
        for j in range(kw):
            out += _offset_view(xp, i, j, out_hw, stride)
    out *= np.asarray(1.0 / (kh * kw), dtype=x.dtype)
    return Tensor.from_op(out, "avg_pool2d", (x,), padded_shape=xp.shape, pads=(ph, ph, pw, pw), kernel=kernel,
                          stride=stride)
    # END SOLUTION


@register_backward("avg_pool2d")
def _avg_pool2d_backward(grad, out, inputs, saved):
    # Every input pixel of a window receives grad / (kH*kW) from that window's output: the same
    # loop over kernel offsets as the forward pass, with += into views of a zero (padded) gradient.
    # BEGIN SOLUTION
    (kh, kw), stride = saved["kernel"], saved["stride"]
    share = grad * np.asarray(1.0 / (kh * kw), dtype=grad.dtype)
    dxp = np.zeros(saved["padded_shape"], dtype=grad.dtype)
    for i in range(kh):
        for j in range(kw):
            _offset_view(dxp, i, j, grad.shape[2:], stride)[...] += share
    return (_crop(dxp, saved["pads"]),)
    # END SOLUTION


class MaxPool2d(Module):
    """torch.nn.MaxPool2d(kernel_size, stride=None, padding=0): max_pool2d as a layer (no parameters)."""

    def __init__(self, kernel_size: Any, stride: Any = None, padding: Any = 0):
        super().__init__()
        self.kernel_size, self.stride, self.padding = kernel_size, kernel_size if stride is None else stride, padding

    def forward(self, x: Tensor) -> Tensor:
        return max_pool2d(x, self.kernel_size, self.stride, self.padding)

    def extra_repr(self) -> str:
        return f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}"


class AvgPool2d(MaxPool2d):
    """torch.nn.AvgPool2d(kernel_size, stride=None, padding=0): avg_pool2d (count_include_pad=True) as a layer."""

    def forward(self, x: Tensor) -> Tensor:
        return avg_pool2d(x, self.kernel_size, self.stride, self.padding)


# ----------------------------------------------------------------------------
# Batch normalisation
# ----------------------------------------------------------------------------


def batch_norm(x: Any, running_mean: np.ndarray | None, running_var: np.ndarray | None, weight: Any = None,
               bias: Any = None, training: bool = False, momentum: float = 0.1, eps: float = 1e-5) -> Tensor:
    """torch.nn.functional.batch_norm: normalise each channel (dim 1) over the batch and every other dim.

        training (or no running stats): mean, var = the batch's per-channel mean and BIASED variance;
                  if running_mean/running_var are given they are updated IN PLACE (numpy arrays):
                  running = (1 - momentum) * running + momentum * batch, with the UNBIASED variance
                  (var * M / (M - 1), M = values per channel) for running_var.
        otherwise: mean, var = running_mean, running_var (constants: no gradient flows to them).
        out = (x - mean) / sqrt(var + eps) * weight + bias

    x: (N, C, ...) float; weight, bias: (C,) Tensors or None. Returns x's shape and dtype.
    Recorded as ONE op "batch_norm" with inputs (x[, weight][, bias]), saved xhat, invstd, whether batch
    statistics were used, and has_weight / has_bias (the rule cannot tell (x, weight) from (x, bias) by
    counting inputs). Errors (ValueError, naming the numbers): "expected input with at least 2 dims (N, C, ...),
    got shape (3,)"; "weight must have shape (3,) (the input's channels), got (2,)" (the same for bias and
    the running stats); a training batch with one value per channel: "expected more than 1 value per channel
    when training, got input of shape (1, 3)" (the variance is undefined); a non-float input (TypeError)
    names its dtype ("int64").
    """
    x = _as_tensor(x)
    weight = None if weight is None else _as_tensor(weight)
    bias = None if bias is None else _as_tensor(bias)
    # TODO: 1. Validate. View x as x3 = (N, C, positions) (reshape): every per-channel statistic is then a
    #          sum over axes (0, 2), and a (C,) vector broadcasts as vector[:, None].
    # TODO: 2. Batch stats: mean = sum / count; xc = x3 - mean (a new array: it becomes xhat); the biased
    #          var = mean of xc * xc (square into the output buffer: no extra temporary). Update the running
    #          arrays in place (running_mean *= 1 - m; running_mean += m * mean ...). Else use the running stats.
    # TODO: 3. invstd = 1 / sqrt(var + eps) per channel; xhat = xc * invstd IN PLACE; out = xhat * weight + bias
    #          written into the output buffer (np.multiply(..., out=), then +=). Record "batch_norm", saving
    #          xhat as (N, C, positions).
    # BEGIN SOLUTION
    if x.ndim < 2:
        raise ValueError(f"batch_norm: expected input with at least 2 dims (N, C, ...), got shape {x.shape}")
    if x.dtype not in FLOAT_DTYPES:
        raise TypeError(f"batch_norm: input must be float32 or float64, got dtype {x.dtype}")
    C = x.shape[1]
    for name, t in (("weight", weight), ("bias", bias), ("running_mean", running_mean),
                    ("running_var", running_var)):
        if t is not None and tuple(t.shape) != (C,):
            raise ValueError(f"batch_norm: {name} must have shape ({C},) (the input's channels), got"
                             f" {tuple(t.shape)}")
    x3 = x.data.reshape(x.shape[0], C, -1)  # (N, C, positions): statistics sum over axes (0, 2)
    count = x3.shape[0] * x3.shape[2]
    use_batch = training or running_mean is None or running_var is None
    out = np.empty(x3.shape, dtype=x.dtype)
    if use_batch:
        if training and count <= 1:
            raise ValueError(f"batch_norm: expected more than 1 value per channel when training, got input"
                             f" of shape {x.shape}")
        mean = x3.sum(axis=(0, 2)) / count
        xhat = np.subtract(x3, mean[:, None])  # centred now, normalised in place below
        var = np.square(xhat, out=out).sum(axis=(0, 2)) / count  # `out` is scratch until the end
        if training and running_mean is not None:
            running_mean *= 1.0 - momentum
            running_mean += momentum * mean
        if training and running_var is not None:
            running_var *= 1.0 - momentum
            running_var += momentum * var * (count / (count - 1))
    else:
        xhat = np.subtract(x3, np.asarray(running_mean, dtype=x.dtype)[:, None])
        var = np.asarray(running_var, dtype=x.dtype)
    invstd = (1.0 / np.sqrt(var + eps)).astype(x.dtype, copy=False)
    xhat *= invstd[:, None]
    inputs = [x]
    if weight is None and bias is None:
        out = xhat
    elif weight is None:
        np.copyto(out, xhat)
    else:
        np.multiply(xhat, weight.data.astype(x.dtype, copy=False)[:, None], out=out)
        inputs.append(weight)
    if bias is not None:
        out += bias.data.astype(x.dtype, copy=False)[:, None]
        inputs.append(bias)
    return Tensor.from_op(out.reshape(x.shape), "batch_norm", inputs, xhat=xhat, invstd=invstd,
                          batch_stats=use_batch, has_weight=weight is not None, has_bias=bias is not None)
    # END SOLUTION


@register_backward("batch_norm")
def _batch_norm_backward(grad, out, inputs, saved):
    # Per channel, with g = grad as (N, C, positions), M values per channel, scale = invstd * weight (or invstd):
    #   dbias = sum(g), dweight = sum(g * xhat)   (over axes (0, 2) -> (C,))
    #   batch statistics:   dx = scale * (g - dbias / M - xhat * dweight / M)
    #                       (the textbook mean(g_hat) and mean(g_hat * xhat) ARE weight * dbias / M and
    #                       weight * dweight / M: the two sums serve both, no extra pass over g)
    #   running statistics: dx = scale * g     (mean and var are constants)
    # BEGIN SOLUTION
    xhat, invstd = saved["xhat"], saved["invstd"]
    g = grad.reshape(xhat.shape)
    count = xhat.shape[0] * xhat.shape[2]
    scale = invstd * inputs[1].data.astype(grad.dtype, copy=False) if saved["has_weight"] else invstd
    dbias = g.sum(axis=(0, 2))
    scratch = np.multiply(g, xhat)
    dweight = scratch.sum(axis=(0, 2))
    dx = np.multiply(g, scale[:, None])
    if saved["batch_stats"]:
        np.multiply(xhat, (scale * dweight / count)[:, None], out=scratch)
        scratch += (scale * dbias / count)[:, None]
        dx -= scratch
    grads = [dx.reshape(grad.shape)]
    if saved["has_weight"]:
        grads.append(dweight)
    if saved["has_bias"]:
        grads.append(dbias)
    return tuple(grads)
    # END SOLUTION


class BatchNorm2d(Module):
    """torch.nn.BatchNorm2d over (N, C, H, W) inputs.

    Parameters (affine=True): weight (ones) and bias (zeros), (C,) float32.
    Running statistics (track_running_stats=True): buffers (Module.register_buffer, so state_dict()
    saves them under torch's keys and load_state_dict() restores them) running_mean (zeros) and
    running_var (ones), float32 numpy arrays of shape (C,), and num_batches_tracked, a 0-d int64 numpy
    array; registered as None otherwise (and then absent from state_dict, as in torch).
    train(): batch statistics, updating the running ones (num_batches_tracked += 1; momentum=None
    means a cumulative average, momentum 1 / num_batches_tracked, as torch).
    eval(): the running statistics if tracked, else batch statistics.
    """

    def __init__(self, num_features: int, eps: float = 1e-5, momentum: float | None = 0.1, affine: bool = True,
                 track_running_stats: bool = True):
        super().__init__()
        # TODO: validate num_features; weight = ones, bias = zeros (float32 Parameters) when affine, else None;
        #       when track_running_stats, register three buffers with self.register_buffer(name, value):
        #       "running_mean" = np.zeros(C, np.float32), "running_var" = np.ones(C, np.float32),
        #       "num_batches_tracked" = np.array(0, dtype=np.int64); else register all three as None.
        #       Keep eps, momentum, affine, track_running_stats.
        # BEGIN SOLUTION
        if not _is_int(num_features) or num_features <= 0:
            raise ValueError(f"BatchNorm2d: num_features must be a positive integer, got {num_features!r}")
        C = int(num_features)
        self.num_features, self.eps, self.momentum = C, float(eps), momentum
        self.affine, self.track_running_stats = bool(affine), bool(track_running_stats)
        self.weight = Parameter(np.ones(C, dtype=np.float32)) if affine else None
        self.bias = Parameter(np.zeros(C, dtype=np.float32)) if affine else None
        track = bool(track_running_stats)
        self.register_buffer("running_mean", np.zeros(C, dtype=np.float32) if track else None)
        self.register_buffer("running_var", np.ones(C, dtype=np.float32) if track else None)
        self.register_buffer("num_batches_tracked", np.array(0, dtype=np.int64) if track else None)
        # END SOLUTION

    def forward(self, x: Tensor) -> Tensor:
        # TODO: a 4-D check (ValueError "expected 4D input (N, C, H, W), got shape (3, 4, 4)") and a channel
        #       check (ValueError "input has 2 channels (shape ...), the layer expects num_features=3");
        #       in training with running stats, count the
        #       batch and pick the momentum; call batch_norm(...) with training = self.training or not
        #       self.track_running_stats.
        # BEGIN SOLUTION
        x = _as_tensor(x)
        if x.ndim != 4:
            raise ValueError(f"BatchNorm2d: expected 4D input (N, C, H, W), got shape {x.shape}")
        if x.shape[1] != self.num_features:
            raise ValueError(f"BatchNorm2d: input has {x.shape[1]} channels (shape {x.shape}), the layer"
                             f" expects num_features={self.num_features}")
        momentum = 0.0 if self.momentum is None else self.momentum
        if self.training and self.track_running_stats:
            self.num_batches_tracked += 1
            if self.momentum is None:
                momentum = 1.0 / self.num_batches_tracked
        use_batch = self.training or not self.track_running_stats
        return batch_norm(x, self.running_mean, self.running_var, self.weight, self.bias, use_batch, momentum,
                          self.eps)
        # END SOLUTION

    def extra_repr(self) -> str:
        return (f"{self.num_features}, eps={self.eps:g}, momentum={self.momentum}, affine={self.affine},"
                f" track_running_stats={self.track_running_stats}")
