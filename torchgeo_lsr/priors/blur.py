r"""Gaussian blur of probability maps, with large sigma and without losing mass at borders.

The paper blurs one-hot NLCD (30 m) upsampled to 1 m with a Gaussian of sigma 31 px and
kernel 101 before remapping it through the co-occurrence matrix. :func:`blur_probs` does
this three ways:

* ``method="exact"``: separable spatial convolution with
  :func:`kornia.filters.gaussian_blur2d` (taps ``exp(-n^2 / 2 sigma^2)``, normalised;
  the same kernel as :func:`scipy.ndimage.gaussian_filter` with
  ``truncate = (kernel_size // 2) / sigma``).
* ``method="fft"``: the same truncated kernel applied with :func:`kornia.filters.fft_conv`;
  equal to ``"exact"`` up to FFT round-off (about 1e-6 in float32), and its cost does not
  grow with the kernel.
* ``method="fast"``: area-average down by an integer factor ``f``, blur on the coarse grid,
  upsample bilinearly. The coarse sigma is chosen so that the variances add up:
  :math:`f^2\sigma_c^2 + (f^2-1)/12 + f^2\,\overline{|u|(1-|u|)}` (box, coarse Gaussian,
  bilinear interpolation over its ``f`` phases ``u``) equals the variance of the truncated
  fine kernel; the factor is :func:`fast_blur_factor`. Measured on realistic one-hot maps
  (512 x 512, 30 px blocks of 5 classes as NLCD upsampled to 1 m, 3 seeds, sigma 31; see
  ``tests/test_priors.py``): max abs difference to ``"exact"`` **<= 3.4e-3** with the
  default kernel (truncate 4 sigma, factor 7) and **<= 8.9e-3** with the paper's kernel 101
  (factor 2; its hard cut-off at 1.6 sigma is what the coarse grid reproduces worst; use
  ``"fft"`` if that matters). The coarse blur is a separable FFT convolution (the same
  truncated taps). Time on 1 x 5 x 2048 x 2048 float32, 2 CPU threads, before that change:
  default kernel 1.2 s (``"fft"`` 3.9 s, ``"exact"`` 10.8 s); kernel 101 1.6 s (2.2 s,
  3.4 s).

Borders (``border``):

* ``"normalized"`` (default): normalised convolution, ``blur(p * v) / blur(v)`` with ``v``
  the validity mask (0 outside the image and on nodata pixels). Near edges and holes each
  pixel averages only the valid pixels it sees, so a map on the simplex stays on the
  simplex (a constant map stays constant up to the edge) and nothing darkens. Pixels that
  see no valid pixel at all come out all zero (no information).
* ``"constant"`` (zero padding, mass leaks out at the edges but the total mass of a map
  whose support is away from the edges is preserved), ``"reflect"`` (mirror about the
  edge pixel, scipy's ``"mirror"``), ``"replicate"`` (scipy's ``"nearest"``),
  ``"circular"`` (scipy's ``"wrap"``).

.. versionadded:: 0.1
"""

from __future__ import annotations

import math
from typing import Literal

import torch
import torch.nn.functional as F
from kornia.filters import fft_conv, gaussian_blur2d, get_gaussian_kernel1d
from torch import Tensor, nn

from ..checks import BlurMethod, check_choice, check_map, check_mask

__all__ = [
    "BlurBorder",
    "BlurMethod",
    "BlurProbs",
    "blur_probs",
    "fast_blur_factor",
    "gaussian_kernel_size",
]

BlurBorder = Literal["normalized", "constant", "reflect", "replicate", "circular"]

#: Neighbourhood weight below which the FFT and fast paths call a pixel "sees no valid
#: pixel" (their round-off is not exactly zero); the exact path uses ``> 0``.
_APPROX_MIN_WEIGHT = 1e-6


def gaussian_kernel_size(sigma: float, truncate: float = 4.0) -> int:
    """Odd kernel size for ``sigma``, as :func:`scipy.ndimage.gaussian_filter` would use.

    Args:
        sigma: standard deviation in pixels, ``>= 0``.
        truncate: radius in units of sigma.

    Returns:
        ``2 * int(truncate * sigma + 0.5) + 1``.

    Example:
        >>> gaussian_kernel_size(31.0), gaussian_kernel_size(31.0, truncate=50 / 31)
        (249, 101)
    """
    if sigma < 0 or truncate <= 0:
        raise ValueError(
            f"need sigma >= 0 and truncate > 0, got sigma={sigma}, truncate={truncate}"
        )
    return 2 * int(truncate * sigma + 0.5) + 1


def fast_blur_factor(sigma: float, kernel_size: int | None = None) -> int:
    """Default integer downsampling factor of ``method="fast"``.

    ``max(1, int(sigma / 4))`` (a coarse sigma of about 4 px) for a kernel reaching at least
    3 sigma (the default reaches 4); for a harder truncation such as the paper's kernel 101
    at sigma 31 (1.6 sigma), whose cut-off the coarse grid must resolve, the even factor
    ``max(1, 2 * int(sigma / 16))``.

    Args:
        sigma: standard deviation in pixels.
        kernel_size: odd kernel size; default :func:`gaussian_kernel_size` of ``sigma``.

    Example:
        >>> fast_blur_factor(31.0), fast_blur_factor(31.0, 101), fast_blur_factor(2.0)
        (7, 2, 1)
    """
    radius = (kernel_size if kernel_size is not None else gaussian_kernel_size(sigma)) // 2
    if radius >= 3 * sigma:
        return max(1, int(sigma / 4))
    return max(1, 2 * int(sigma / 16))


def _pair_sigma(sigma: float | tuple[float, float]) -> tuple[float, float]:
    pair = (sigma, sigma) if isinstance(sigma, int | float) else tuple(sigma)
    if len(pair) != 2:
        raise ValueError(f"sigma must be a number or a pair (sigma_y, sigma_x), got {sigma!r}")
    sy, sx = float(pair[0]), float(pair[1])
    if not (sy >= 0 and sx >= 0) or math.isinf(sy) or math.isinf(sx):
        raise ValueError(f"sigma must be finite and >= 0, got {sigma!r}")
    return sy, sx


def _pair_kernel(
    kernel_size: int | tuple[int, int] | None, sigma: tuple[float, float]
) -> tuple[int, int]:
    if kernel_size is None:
        return gaussian_kernel_size(sigma[0]), gaussian_kernel_size(sigma[1])
    pair = (kernel_size, kernel_size) if isinstance(kernel_size, int) else tuple(kernel_size)
    if len(pair) != 2 or any(not isinstance(k, int) or k < 1 or k % 2 == 0 for k in pair):
        raise ValueError(f"kernel_size must be an odd positive int or pair, got {kernel_size!r}")
    return int(pair[0]), int(pair[1])


def _upsample_variance(factor: int) -> float:
    """Variance (fine px^2) that bilinear upsampling by ``factor`` adds, averaged over phases."""
    u = [abs((j + 0.5) / factor - 0.5) for j in range(factor)]
    return factor**2 * sum(a * (1 - a) for a in u) / factor


def _kernel_variance(sigma: float, radius: int) -> float:
    """Variance (px^2) of the normalised Gaussian kernel truncated at ``radius`` taps."""
    if sigma == 0 or radius == 0:
        return 0.0
    taps = range(-radius, radius + 1)
    weights = [math.exp(-(n**2) / (2 * sigma**2)) for n in taps]
    return sum(n**2 * wt for n, wt in zip(taps, weights, strict=True)) / sum(weights)


def _coarse_sigma(sigma: float, radius: int, factor: int, radius_c: int) -> float:
    """Coarse sigma whose pool + truncated coarse blur + bilinear chain matches the variance.

    The target is the variance of the *truncated* fine kernel (radius ``radius``), so a
    hard truncation such as the paper's kernel 101 at sigma 31 is matched in its second
    moment; the coarse kernel is truncated at ``radius_c`` taps.
    """
    if sigma == 0:
        return 0.0
    var_c = _kernel_variance(sigma, radius) - (factor**2 - 1) / 12 - _upsample_variance(factor)
    var_c /= factor**2
    if var_c <= 0 or var_c >= radius_c**2:
        raise ValueError(
            f"factor {factor} does not fit sigma {sigma} with kernel radius {radius}: use a "
            f"smaller factor (default {fast_blur_factor(sigma, 2 * radius + 1)})"
        )
    lo, hi = 0.0, 1.0
    while _kernel_variance(hi, radius_c) < var_c:
        hi *= 2
        if hi > 1e6:  # the truncated variance saturates below radius_c**2 / 3
            raise ValueError(
                f"factor {factor} does not fit sigma {sigma} with kernel radius {radius}: use "
                f"a smaller factor (default {fast_blur_factor(sigma, 2 * radius + 1)})"
            )
    for _ in range(60):
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if _kernel_variance(mid, radius_c) < var_c else (lo, mid)
    return (lo + hi) / 2


def _gauss(x: Tensor, ksize: tuple[int, int], sigma: tuple[float, float], border: str) -> Tensor:
    """Separable Gaussian via kornia; an axis with sigma 0 (or kernel 1) is left alone."""
    ky, kx = (1 if s == 0 else k for k, s in zip(ksize, sigma, strict=True))
    if ky == 1 and kx == 1:
        return x
    sy, sx = (s if s > 0 else 1.0 for s in sigma)
    out: Tensor = gaussian_blur2d(x, (ky, kx), (sy, sx), border_type=border)
    return out


def _gauss_fft(
    x: Tensor, ksize: tuple[int, int], sigma: tuple[float, float], border: str
) -> Tensor:
    """The same truncated kernel as :func:`_gauss`, applied with kornia's FFT convolution."""
    ky, kx = (1 if s == 0 else k for k, s in zip(ksize, sigma, strict=True))
    if ky == 1 and kx == 1:
        return x
    dev, dt = x.device, x.dtype

    def taps(k: int, s: float) -> Tensor:
        if k == 1:
            return torch.ones(1, 1, device=dev, dtype=dt)
        out: Tensor = get_gaussian_kernel1d(k, s, device=dev, dtype=dt)
        return out

    kernel_y, kernel_x = taps(ky, sigma[0]), taps(kx, sigma[1])
    kernel = kernel_y[:, :, None] * kernel_x[:, None, :]
    out: Tensor = fft_conv(x, kernel, border_type=border)
    return out


def _gauss_separable_fft(x: Tensor, ksize: tuple[int, int], sigma: tuple[float, float]) -> Tensor:
    """Zero-padded separable Gaussian (the taps of :func:`_gauss`) by 1-D FFTs per axis.

    Equal to ``_gauss(x, ksize, sigma, "constant")`` up to FFT round-off (~1e-6 in
    float32) and, for kernels of more than a few taps, several times faster on the CPU.
    """
    out = x
    for axis, (k, s) in enumerate(zip(ksize, sigma, strict=True)):
        if s == 0 or k == 1:
            continue
        dim = -2 + axis
        n, r = x.shape[dim], k // 2
        m = n + 2 * r
        taps = get_gaussian_kernel1d(k, s, device=x.device, dtype=x.dtype)[0]
        # kernel centred on index 0 of a length-m circular signal
        kernel = torch.roll(F.pad(taps, (0, m - k)), -r)
        spectrum = torch.fft.rfft(kernel, n=m)
        shape = [1] * out.ndim
        shape[dim] = spectrum.shape[0]
        padded = F.pad(out, (0, 2 * r) if dim == -1 else (0, 0, 0, 2 * r))
        full = torch.fft.irfft(torch.fft.rfft(padded, dim=dim) * spectrum.view(shape), n=m, dim=dim)
        out = full.narrow(dim, 0, n)
    return out


def pyramid_canvas(h: int, w: int, factor: tuple[int, int]) -> tuple[int, int]:
    """Coarse shape of the ``method="fast"`` canvas of an ``(h, w)`` map.

    The fine map sits ``factor`` pixels in from the canvas corner (one coarse pixel of
    zeros beyond each edge, so bilinear clamping at the canvas edge never reaches the
    image), and the canvas is rounded up to a multiple of the factor: fine pixel
    ``(r, c)`` falls in coarse cell ``(r // fy + 1, c // fx + 1)``.

    Example:
        >>> pyramid_canvas(10, 7, (2, 2))
        (7, 6)
    """
    fy, fx = factor
    return (h + 2 * fy + (-(h + 2 * fy)) % fy) // fy, (w + 2 * fx + (-(w + 2 * fx)) % fx) // fx


def pyramid_blur_coarse(
    coarse: Tensor, ksize: tuple[int, int], sigma: tuple[float, float], factor: tuple[int, int]
) -> Tensor:
    """The coarse blur of ``method="fast"`` on an area-averaged canvas (zero padded).

    The coarse sigma matches the variance of the fine chain (see the module docstring); the
    kernel is truncated at about the fine kernel's physical radius (at least 1 tap).
    """
    fy, fx = factor
    ry, rx = (max(1, round((k // 2) / f)) for k, f in zip(ksize, factor, strict=True))
    sigma_c = (
        _coarse_sigma(sigma[0], ksize[0] // 2, fy, ry) if fy > 1 else sigma[0],
        _coarse_sigma(sigma[1], ksize[1] // 2, fx, rx) if fx > 1 else sigma[1],
    )
    ks = (2 * ry + 1 if fy > 1 else ksize[0], 2 * rx + 1 if fx > 1 else ksize[1])
    return _gauss_separable_fft(coarse, ks, sigma_c)


def pyramid_up(coarse: Tensor, factor: tuple[int, int], h: int, w: int) -> Tensor:
    """Bilinear upsampling of a ``method="fast"`` canvas back to the ``(h, w)`` fine map."""
    fy, fx = factor
    fine = F.interpolate(coarse, scale_factor=(fy, fx), mode="bilinear", align_corners=False)
    return fine[..., fy : fy + h, fx : fx + w]


def _gauss_pyramid(
    x: Tensor, ksize: tuple[int, int], sigma: tuple[float, float], factor: int
) -> Tensor:
    """Zero-padded Gaussian blur approximated by area-down, coarse blur, bilinear-up.

    An axis with sigma 0 is neither pooled nor blurred.
    """
    fy, fx = (factor if s > 0 else 1 for s in sigma)
    if fy == 1 and fx == 1:
        return _gauss(x, ksize, sigma, "constant")
    h, w = x.shape[-2:]
    hc, wc = pyramid_canvas(h, w, (fy, fx))
    canvas = F.pad(x, (fx, wc * fx - w - fx, fy, hc * fy - h - fy))
    coarse = F.avg_pool2d(canvas, (fy, fx))
    coarse = pyramid_blur_coarse(coarse, ksize, sigma, (fy, fx))
    return pyramid_up(coarse, (fy, fx), h, w)


def _pad_for(x: Tensor, ksize: tuple[int, int], border: str) -> tuple[Tensor, int, int]:
    """Pad by the kernel radius with ``border`` so a zero-padded blur can stand in for it."""
    ry, rx = ksize[0] // 2, ksize[1] // 2
    return F.pad(x, (rx, rx, ry, ry), mode=border), ry, rx


def blur_probs(
    p: Tensor,
    sigma: float | tuple[float, float],
    kernel_size: int | tuple[int, int] | None = None,
    valid: Tensor | None = None,
    method: BlurMethod = "exact",
    border: BlurBorder = "normalized",
    factor: int | None = None,
    fill: bool = True,
) -> Tensor:
    """Gaussian blur of a probability (or any non-negative) map, per channel.

    Args:
        p: map ``(B, C, H, W)`` or ``(C, H, W)``, float32 or float64.
        sigma: standard deviation in pixels, one number or ``(sigma_y, sigma_x)``; ``>= 0``
            (0 leaves that axis unblurred).
        kernel_size: odd size or ``(k_y, k_x)``; default :func:`gaussian_kernel_size`
            (truncate 4 sigma, as scipy). The paper: sigma 31, kernel 101.
        valid: optional boolean mask ``(B, H, W)`` or ``(H, W)``, False at nodata pixels
            (``border="normalized"`` only). Their values are ignored.
        method: ``"exact"``, ``"fft"`` or ``"fast"`` (see the module docstring for the
            measured error of ``"fast"``).
        border: ``"normalized"`` (default; no mass lost at edges or holes), ``"constant"``,
            ``"reflect"``, ``"replicate"`` or ``"circular"``.
        factor: downsampling factor of ``method="fast"``; default :func:`fast_blur_factor`
            of the smaller sigma.
        fill: with ``border="normalized"``, whether pixels that are not ``valid`` get the
            blurred estimate of their neighbourhood (True) or stay all zero (False).

    Returns:
        Blurred map, same shape and dtype as ``p``. With ``border="normalized"`` each
        pixel is a weighted average of valid input pixels, so class vectors on the simplex
        stay on it; pixels whose kernel sees no valid pixel are all zero.

    Raises:
        ValueError: on wrong shapes, negative sigma, even kernel sizes, unknown options, or a
            kernel too large for ``"reflect"``/``"circular"`` borders.

    Example:
        >>> p = torch.zeros(2, 5, 5)
        >>> p[0], p[1, 2, 2], p[0, 2, 2] = 1.0, 1.0, 0.0
        >>> q = blur_probs(p, sigma=1.0, kernel_size=3)
        >>> torch.allclose(q.sum(dim=0), torch.ones(5, 5))  # still on the simplex
        True
        >>> round(q[1, 2, 2].item(), 4)
        0.2042
    """
    check_map(p)
    sig = _pair_sigma(sigma)
    ksize = _pair_kernel(kernel_size, sig)
    mask = check_mask(valid, p, "valid")
    check_choice("method", method, BlurMethod)
    check_choice("border", border, BlurBorder)
    if mask is not None and border != "normalized":
        raise ValueError(f"valid needs border='normalized' (got border={border!r})")
    if factor is not None and (not isinstance(factor, int) or factor < 1):
        raise ValueError(f"factor must be a positive int, got {factor!r}")
    if factor is not None and method != "fast":
        raise ValueError(f"factor applies to method='fast' only (got method={method!r})")
    h, w = p.shape[-2:]
    if border in ("reflect", "circular") and (ksize[0] // 2 >= h or ksize[1] // 2 >= w):
        raise ValueError(
            f"border={border!r} needs the kernel radius ({ksize[0] // 2}, {ksize[1] // 2}) "
            f"below the map size ({h}, {w}); use border='normalized'"
        )

    x = p if p.ndim == 4 else p.unsqueeze(0)
    v = None if mask is None else (mask if mask.ndim == 3 else mask.unsqueeze(0))

    f = factor
    if f is None:  # the factor of the axis that needs the smaller one
        axes = [(s, k) for s, k in zip(sig, ksize, strict=True) if s > 0]
        f = min((fast_blur_factor(s, k) for s, k in axes), default=1)

    def blur(t: Tensor, mode: str, s: tuple[float, float] = sig) -> Tensor:
        match method:
            case "exact":
                return _gauss(t, ksize, s, mode)
            case "fft":
                return _gauss_fft(t, ksize, s, mode)
            case _ if mode == "constant":
                return _gauss_pyramid(t, ksize, s, f)
            case _:
                padded, ry, rx = _pad_for(t, ksize, mode)
                return _gauss_pyramid(padded, ksize, s, f)[..., ry : ry + h, rx : rx + w]

    if border != "normalized":
        out = blur(x, border)
    else:
        if v is None:
            # The weight of a full-image mask is separable: blur a column and a row of ones.
            num = blur(x, "constant")
            ones_y = torch.ones(1, 1, h, 1, dtype=x.dtype, device=x.device)
            ones_x = torch.ones(1, 1, 1, w, dtype=x.dtype, device=x.device)
            den = blur(ones_y, "constant", (sig[0], 0.0)) * blur(ones_x, "constant", (0.0, sig[1]))
        else:
            vf = v.unsqueeze(1).to(x.dtype)
            both = blur(torch.cat([x * vf, vf], dim=1), "constant")
            num, den = both[:, :-1], both[:, -1:]
        floor = 0.0 if method == "exact" else _APPROX_MIN_WEIGHT
        seen = den > floor
        out = torch.where(seen, num, torch.zeros_like(num)) / torch.where(
            seen, den, torch.ones_like(den)
        )
        if method != "exact":
            out = out.clamp_min(0)
        if v is not None and not fill:
            out = out * v.unsqueeze(1).to(out.dtype)
    return out if p.ndim == 4 else out.squeeze(0)


class BlurProbs(nn.Module):
    """Module form of :func:`blur_probs`: stores the options, blurs ``p`` with ``valid``.

    Args:
        sigma: standard deviation in pixels (number or ``(sigma_y, sigma_x)``).
        kernel_size: odd size or pair; default truncate 4 sigma.
        method: ``"exact"``, ``"fft"`` or ``"fast"``.
        border: border handling, default ``"normalized"``.
        factor: downsampling factor for ``"fast"``.
        fill: fill invalid pixels from their neighbourhood (normalized border).

    Example:
        >>> blur = BlurProbs(sigma=31.0, kernel_size=101)  # the paper's NLCD blur
        >>> blur(torch.ones(1, 3, 64, 64)).shape
        torch.Size([1, 3, 64, 64])
    """

    def __init__(
        self,
        sigma: float | tuple[float, float],
        kernel_size: int | tuple[int, int] | None = None,
        method: BlurMethod = "exact",
        border: BlurBorder = "normalized",
        factor: int | None = None,
        fill: bool = True,
    ) -> None:
        super().__init__()
        sig = _pair_sigma(sigma)
        _pair_kernel(kernel_size, sig)
        check_choice("method", method, BlurMethod)
        check_choice("border", border, BlurBorder)
        self.sigma = sigma
        self.kernel_size = kernel_size
        self.method: BlurMethod = method
        self.border: BlurBorder = border
        self.factor = factor
        self.fill = fill

    def forward(self, p: Tensor, valid: Tensor | None = None) -> Tensor:
        """Blur ``p``; see :func:`blur_probs` for shapes."""
        return blur_probs(
            p,
            self.sigma,
            self.kernel_size,
            valid,
            method=self.method,
            border=self.border,
            factor=self.factor,
            fill=self.fill,
        )

    def extra_repr(self) -> str:
        """Options shown in ``repr``."""
        return (
            f"sigma={self.sigma}, kernel_size={self.kernel_size}, method={self.method!r}, "
            f"border={self.border!r}, factor={self.factor}, fill={self.fill}"
        )
