"""Synthetic frontal chest radiographs: anatomy, acquisition and image composition.

Everything is drawn in *canonical* patient coordinates ``(u, v)``: ``u`` runs from the image's
left edge (-1, the patient's right side) to its right edge (+1, the patient's left), ``v`` from
the top (-1) to the bottom (+1). Two units span a 36 cm field, so ``CM`` units are 1 cm. Each
study maps its pixel grid into canonical space through its own rotation, scale and shift (the
acquisition), so anatomy and findings are analytic functions of ``(u, v)`` evaluated once per
pixel: no per-study resampling and a single small blur (tubes and lines).

Rendering is layered (:class:`Layers`): soft tissue, lung air, the fraction of that air replaced
by fluid or tissue (``fill``), extra lucency, bone, radiopaque additions, and a mask of where lung
markings survive. Findings (``pipeline.demo.lesions``) first adjust the :class:`Anatomy` (a big heart,
flat diaphragms, volume loss) and then paint into the layers; :func:`compose` makes the image.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache

import numpy as np
from scipy import ndimage

CM = 1.0 / 18.0  # canonical units per centimetre (36 cm field over 2 units)
HILA = {"right": (-0.17, -0.10), "left": (0.19, -0.12)}  # (u, v) of the pulmonary hila
ZONES = {"upper": (-0.62, -0.28), "middle": (-0.28, 0.04), "lower": (0.04, 0.36)}  # v ranges


@dataclass
class Acquisition:
    view: str  # "PA" | "AP"
    scale: float  # >1 zooms in
    angle: float  # radians, patient rotation in the image plane
    shift: tuple[float, float]  # (du, dv) of the patient in the field
    gain: float  # exposure: multiplies attenuation before the film curve
    gamma: float  # film/processing curve
    noise: float  # quantum noise, standard deviation in output units
    body_w: float  # habitus: half-width of the body outline at the chest


@dataclass
class Anatomy:
    ctr: float = 0.45  # cardiothoracic ratio: heart width / internal thoracic width
    lung_w: float = 0.78  # half-width of the internal thorax at its widest (canonical units)
    apex: float = -0.74  # v of the lung apices
    dia_r: float = 0.44  # v of the right costophrenic angle (the right dome sits higher)
    dia_l: float = 0.50  # v of the left costophrenic angle
    dome_h: float = 0.15  # height of the diaphragm domes above the costophrenic angles
    med_w: float = 0.10  # half-width of the upper mediastinum
    shift: float = 0.0  # mediastinal shift toward the patient's left (+u), canonical units
    heart_v: float = 0.21  # v of the heart's centre
    air: float = 1.0  # lung air scale; >1 for hyperinflation


@dataclass
class Frame:
    """Per-study canonical coordinates of every pixel, (H, W) float32 arrays."""

    u: np.ndarray
    v: np.ndarray
    edge: float  # width of a soft boundary in canonical units (about 1.5 px)
    px: float  # canonical units per pixel
    acq: Acquisition  # the mapping back to pixels (to_pixel)
    cache: dict = field(default_factory=dict)  # per-study arrays reused across layers (domes)

    def to_pixel(self, u: np.ndarray, v: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Canonical (u, v) -> fractional pixel (col, row)."""
        c, s, k = np.cos(self.acq.angle), np.sin(self.acq.angle), self.acq.scale
        size = self.u.shape[0]
        x = k * (c * u - s * v) + self.acq.shift[0]
        y = k * (s * u + c * v) + self.acq.shift[1]
        return (x + 1.0) * size / 2.0 - 0.5, (y + 1.0) * size / 2.0 - 0.5

    def window(self, u0: float, u1: float, v0: float, v1: float) -> tuple[slice, slice]:
        """Pixel (rows, cols) slices covering a canonical box: local work stays local."""
        x, y = self.to_pixel(np.array([u0, u0, u1, u1]), np.array([v0, v1, v0, v1]))
        n = self.u.shape[0]
        r0, r1 = int(np.clip(y.min() - 2, 0, n)), int(np.clip(y.max() + 3, 0, n))
        c0, c1 = int(np.clip(x.min() - 2, 0, n)), int(np.clip(x.max() + 3, 0, n))
        return slice(r0, r1), slice(c0, c1)

    def sub(self, win: tuple[slice, slice]) -> Frame:
        return Frame(self.u[win], self.v[win], self.edge, self.px, self.acq)

    def lateral(self, side: str) -> np.ndarray:
        """Distance from the midline toward ``side`` (negative on the other side)."""
        return -self.u if side == "right" else self.u


@dataclass
class Layers:
    soft: np.ndarray  # soft-tissue thickness, 0 outside the body
    air: np.ndarray  # lung air (both lungs, heart overlap removed)
    lung: dict[str, np.ndarray]  # per-side lung field masks
    heart: np.ndarray  # heart and mediastinal shadow
    bone: np.ndarray  # ribs, clavicles, spine, scapulae
    bone_fade: np.ndarray  # bone contrast factor (lower over mediastinum and abdomen)
    fill: np.ndarray  # fraction of lung air replaced by fluid / tissue, combined as 1 - prod(1 - f)
    lucent: np.ndarray  # extra lucency (pneumothorax, bullae)
    keep: np.ndarray  # where lung markings survive (0 beyond a pleural line)
    dense: np.ndarray  # radiopaque additions: calcification, devices, callus
    lines: np.ndarray  # thin device strokes, blurred once in compose()
    rib_q: np.ndarray  # rib phase: integer part = rib index (0 = first rib), per pixel


def ramp(x: np.ndarray | float, w: float) -> np.ndarray:
    """A soft step from 0 to 1 across ``x`` in [-w/2, w/2]."""
    t = np.multiply(x, np.float32(1.0 / w), dtype=np.float32)
    t += np.float32(0.5)
    return np.clip(t, 0.0, 1.0, out=t)


def add_fill(layers: Layers, f: np.ndarray) -> None:
    layers.fill[...] = 1.0 - (1.0 - layers.fill) * (1.0 - np.clip(f, 0.0, 1.0))


def sample_acquisition(rng: np.random.Generator, view: str) -> Acquisition:
    return Acquisition(
        view=view,
        scale=float(rng.uniform(0.94, 1.06)),
        angle=float(rng.normal(0.0, 0.035)),
        shift=(float(rng.normal(0.0, 0.025)), float(rng.normal(0.02, 0.03))),
        gain=float(rng.uniform(0.88, 1.12)),
        gamma=float(rng.uniform(0.85, 1.2)),
        noise=float(rng.uniform(0.008, 0.025)),
        body_w=float(rng.uniform(0.96, 1.12)),
    )


def sample_anatomy(rng: np.random.Generator, view: str) -> Anatomy:
    an = Anatomy(
        ctr=float(rng.uniform(0.39, 0.47)),
        lung_w=float(rng.uniform(0.75, 0.81)),
        apex=float(rng.uniform(-0.77, -0.71)),
        dia_r=float(rng.uniform(0.40, 0.48)),
        med_w=float(rng.uniform(0.085, 0.11)),
        heart_v=float(rng.uniform(0.18, 0.24)),
    )
    an.dia_l = an.dia_r + float(rng.uniform(0.03, 0.08))
    if view == "AP":  # supine/semi-erect: shallower inspiration, magnified heart
        an.dia_r -= 0.04
        an.dia_l -= 0.04
        an.ctr *= 1.05
    return an


@lru_cache(maxsize=8)
def _grid(size: int) -> tuple[np.ndarray, np.ndarray]:
    c = (np.arange(size, dtype=np.float32) + 0.5) / size * 2.0 - 1.0
    return np.meshgrid(c, c)  # (x, y), each (H, W)


def make_frame(size: int, acq: Acquisition) -> Frame:
    x, y = _grid(size)
    cos, sin = np.float32(np.cos(acq.angle)), np.float32(np.sin(acq.angle))
    xs, ys = x - np.float32(acq.shift[0]), y - np.float32(acq.shift[1])
    k = np.float32(1.0 / acq.scale)
    px = 2.0 / size / acq.scale
    return Frame(u=(cos * xs + sin * ys) * k, v=(-sin * xs + cos * ys) * k,
                 edge=max(0.012, 1.5 * px), px=px, acq=acq)


def dome_v(fr: Frame, an: Anatomy, side: str) -> np.ndarray:
    """v of the hemidiaphragm under each pixel's column (dome highest mid-hemithorax);
    ``side="both"`` gives each half of the image its own side."""
    if side not in fr.cache:
        if side == "both":
            fr.cache[side] = np.where(fr.u < 0, dome_v(fr, an, "right"), dome_v(fr, an, "left"))
        else:
            x = fr.lateral(side) - 0.36  # dome peak; steep fall into the costophrenic angle
            x = np.where(x > 0, x / 0.45, x / 0.6)
            dome = np.clip(1.0 - np.abs(x) ** 1.7, 0.0, 1.0)
            fr.cache[side] = (an.dia_r if side == "right" else an.dia_l) - an.dome_h * dome
    return fr.cache[side]


def lung_field(fr: Frame, an: Anatomy, side: str, collapse: float = 0.0,
               apex_drop: float = 0.0, graded: bool = False) -> np.ndarray:
    """Soft mask of one lung field (heart overlap not removed).

    ``collapse`` pulls the lateral lung edge toward the mediastinum (fraction of the width) and
    ``apex_drop`` lowers the apex: the visceral pleural line of a pneumothorax. ``graded``
    thins the air toward the chest wall and apex, where soft tissue overlaps the lung.
    """
    w = fr.edge
    e_wall = fr.lateral(side)
    e_med = e_wall + (an.shift if side == "right" else -an.shift)
    apex = an.apex + apex_drop
    t = np.clip((fr.v - apex) / 0.85, 0.0, 1.0)
    lat = 0.22 + (an.lung_w - 0.22) * np.sqrt(t) - 0.05 * np.clip(fr.v - 0.15, 0.0, None)
    lat = lat - collapse * (lat - 0.12)
    med = np.maximum(an.med_w, 0.22 - 0.12 * np.sqrt(np.clip((fr.v - apex) / 0.12, 0.0, 1.0)))
    mask = (ramp(lat - e_wall, w) * ramp(e_med - med, w) * ramp(dome_v(fr, an, side) - fr.v, w)
            * ramp(fr.v - apex, w))
    if graded:
        depth = np.clip((lat - e_wall) / 0.22, 0.0, 1.0) * np.clip((fr.v - apex) / 0.30, 0.0, 1.0)
        return mask, mask * (0.55 + 0.45 * np.sqrt(depth))
    return mask


def heart_shadow(fr: Frame, an: Anatomy) -> np.ndarray:
    """Heart and upper mediastinum with the aortic knob.

    The heart is an ellipse tilted 35 degrees (apex down and to the patient's left) whose
    horizontal extent is exactly ctr x the internal thoracic width, one third right of midline.
    """
    width = an.ctr * 2.0 * an.lung_w
    cu = width / 6.0 + an.shift
    phi = np.deg2rad(35.0)
    c, s = np.float32(np.cos(phi)), np.float32(np.sin(phi))
    k = (width / 2.0) / np.sqrt((1.3 * c) ** 2 + s ** 2)  # semi-axes 1.3k (long), k (short)
    du, dv = fr.u - cu, fr.v - an.heart_v
    r = ((c * du + s * dv) / (1.3 * k)) ** 2 + ((-s * du + c * dv) / k) ** 2
    heart = ramp(1.0 - r, 0.08)
    mu = fr.u - an.shift * 0.6
    upper = ramp(an.med_w - np.abs(mu - 0.015), fr.edge) * ramp(an.heart_v - fr.v, 0.05)
    knob = ramp(1.0 - ((mu - an.med_w * 0.75) ** 2 + (fr.v + 0.29) ** 2) / 0.085 ** 2, 0.25)
    return np.maximum(np.maximum(heart, upper), knob)


def rib_phase(fr: Frame) -> np.ndarray:
    """Posterior-rib phase: straighten the rib arcs, then count ribs with widening spacing."""
    e = np.abs(fr.u)
    p = fr.v + 0.12 * e - 0.62 * e * e
    t = np.clip((p + 0.86) / 1.45, 0.0, 1.0)
    return 11.0 * t ** 0.88


def rib_profile(q: np.ndarray) -> np.ndarray:
    """Band (0..1) with brighter cortical margins, from a rib phase."""
    d = np.abs(q - np.floor(q) - 0.3) / 0.21
    inside = np.clip(1.0 - d, 0.0, 1.0)
    cortex = np.clip(1.0 - ((1.0 - d) / 0.3) ** 2, 0.0, 1.0)  # bump at the band's margins
    return 0.55 * np.sqrt(inside) + 0.45 * cortex * (d < 1.05)


def bones(fr: Frame, an: Anatomy, acq: Acquisition, q: np.ndarray) -> np.ndarray:
    e = np.abs(fr.u)
    cage = 0.22 + (an.lung_w - 0.22) * np.sqrt(np.clip((fr.v - an.apex + 0.06) / 0.85, 0, 1))
    span = ramp(cage + 0.07 - e, 0.04) * ramp(e - 0.07, 0.04) * ramp(0.62 - fr.v, 0.1)
    post = 0.30 * rib_profile(q) * span * (q > 0.02)
    qa = np.clip((fr.v + 0.42 * e + 0.62) / 1.1, 0.0, 1.0) * 7.0
    ant = 0.07 * rib_profile(qa) * span * ramp(e - 0.3, 0.15) * (qa > 0.05) * (qa < 6.9)
    lift = 0.05 if acq.view == "AP" else 0.0
    clav = np.zeros_like(fr.u)
    win = fr.window(-0.7, 0.7, -1.0, -0.55 - lift)
    c = fr.sub(win)
    ec = np.abs(c.u)
    cv = -0.66 - lift - 0.34 * ec + 0.16 * ec * ec
    band = np.sqrt(np.clip(1.0 - np.abs(c.v - cv) / (0.026 + 0.01 * (ec < 0.15)), 0, 1))
    clav[win] = 0.32 * band * ramp(0.64 - ec, 0.05) * ramp(ec - 0.05, 0.03)
    spine = 0.07 * ramp(0.075 - np.abs(fr.u), 0.02) * (0.85 + 0.15 * np.cos(fr.v * 60.0))
    border = (0.78 if acq.view == "PA" else 0.58) + 0.12 * (fr.v + 0.7)
    scap = 0.10 * ramp(e - border, 0.03) * ramp(fr.v + 0.74, 0.05) * ramp(-0.12 - fr.v, 0.1)
    below = dome_v(fr, an, "both")
    post = post * (1.0 - 0.6 * ramp(fr.v - below, 0.04))
    return post + ant + clav + spine + scap


def body_soft(fr: Frame, acq: Acquisition) -> np.ndarray:
    grow = np.clip((fr.v + 1.0) / 0.36, 0.0, 1.0)
    bw = (0.25 + 0.75 * grow * grow * (3 - 2 * grow)) * acq.body_w
    inside = ramp(bw - np.abs(fr.u), 0.05)
    thick = np.sqrt(np.clip(1.0 - (fr.u / (bw + 0.05)) ** 2, 0.0, 1.0))
    return inside * (0.35 + 0.65 * thick ** 1.5)


def airways(fr: Frame, an: Anatomy) -> np.ndarray:
    """Trachea down to the carina and the two main bronchi (air, 0..1)."""
    out = np.zeros_like(fr.u)
    win = fr.window(-0.25, 0.25, -1.0, 0.0)
    out[win] = _airways(fr.sub(win), an)
    return out


def _airways(fr: Frame, an: Anatomy) -> np.ndarray:
    carina = carina_v(an)
    tu = an.shift * 0.5
    trachea = ramp(0.03 - np.abs(fr.u - tu), fr.edge) * ramp(carina - fr.v, 0.02)
    bronchi = np.zeros_like(fr.u)
    for hu, hv in HILA.values():
        du, dv = hu - tu, hv - carina
        t = np.clip(((fr.u - tu) * du + (fr.v - carina) * dv) / (du * du + dv * dv), 0, 1)
        dist = np.hypot(fr.u - tu - t * du, fr.v - carina - t * dv)
        bronchi = np.maximum(bronchi, ramp(0.022 - dist, fr.edge) * (t < 0.95))
    return np.maximum(trachea * ramp(fr.v + 0.95, 0.05), bronchi)


def carina_v(an: Anatomy) -> float:
    return an.apex + 0.44


def build_layers(fr: Frame, an: Anatomy, acq: Acquisition) -> Layers:
    heart = heart_shadow(fr, an)
    (lr, gr), (ll, gl) = (lung_field(fr, an, s, graded=True) for s in ("right", "left"))
    lung = {"right": lr, "left": ll}
    air = (gr + gl) * (1.0 - 0.72 * heart)
    z = np.zeros_like(fr.u)
    q = rib_phase(fr)
    fade = 0.4 + 0.6 * np.minimum(air, 1.0)  # bone contrast is highest against lung
    return Layers(soft=body_soft(fr, acq), air=air, lung=lung, heart=heart,
                  bone=bones(fr, an, acq, q) * fade, bone_fade=fade, fill=z.copy(), lucent=z.copy(),
                  keep=np.ones_like(z), dense=z.copy(), lines=z.copy(), rib_q=q)


def compose(fr: Frame, an: Anatomy, acq: Acquisition, layers: Layers,
            rng: np.random.Generator) -> np.ndarray:
    """The radiograph, float32 (H, W) in [0, 1], bright = attenuating."""
    size = fr.u.shape[0]
    fine, coarse = noise_bank(size)
    marks = markings(fr, int(rng.integers(len(_markings_bank(size)))))
    sy, sx = (int(a) for a in rng.integers(0, size, 2))
    tex = np.roll(fine, (sy, sx), (0, 1)) * 0.5 + np.roll(coarse, (sx, sy), (0, 1))
    wet = 1.0 - layers.fill
    air = layers.air * wet * an.air + layers.lucent
    lung_tex = layers.air * wet * layers.keep * (0.13 * marks + 0.02 * tex)
    abdomen = ramp(fr.v - dome_v(fr, an, "both"), 0.02) * layers.soft
    gas = np.zeros_like(fr.u)
    gv = an.dia_l - an.dome_h * 0.6
    win = fr.window(0.22, 0.44, gv - 0.07, gv + 0.07)
    g = fr.sub(win)
    bubble = ((g.u - 0.33) / 0.09) ** 2 + ((g.v - gv) / 0.05) ** 2
    gas[win] = 0.30 * ramp(1.0 - bubble, 0.3) * ramp(g.v - dome_v(fr, an, "left")[win] - 0.015, fr.edge)
    # Attenuation calibrated to a typical film: lung ~0.3, lateral soft tissue ~0.5,
    # mediastinum ~0.88, abdomen ~0.82, bone +0.1..0.3 (0 = black, 1 = white).
    airway = airways(fr, an) * (1.0 - np.minimum(layers.air, 1.0))
    att = (0.80 * layers.soft + 0.08 * layers.heart * (1.0 - abdomen) + 0.06 * abdomen
           + layers.bone + layers.dense + lung_tex - 0.50 * air - 0.18 * airway - gas
           + 0.015 * coarse * layers.soft)
    if layers.lines.any():
        att += 1.1 * ndimage.gaussian_filter(layers.lines, 0.6)
    img = np.clip(att * acq.gain, 0.0, 1.0) ** acq.gamma  # film curve
    img = img + rng.standard_normal(img.shape, dtype=np.float32) * acq.noise
    return np.clip(img, 0.0, 1.0)


@lru_cache(maxsize=4)
def noise_bank(size: int) -> tuple[np.ndarray, np.ndarray]:
    """Two smooth noise fields (fine, coarse), zero mean, unit-ish scale; fixed seed."""
    rng = np.random.default_rng(20250101)
    white = rng.standard_normal((2, size, size)).astype(np.float32)
    fine = ndimage.gaussian_filter(white[0], size / 256 * 1.2, mode="wrap")
    coarse = ndimage.gaussian_filter(white[1], size / 256 * 7.0, mode="wrap")
    return fine / fine.std(), coarse / coarse.std()


def _tree_points(rng: np.random.Generator, root: tuple[float, float], angle: float,
                 step: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Sample points of one branching vessel tree: (u, v, weight) arrays."""
    us, vs, ws = [], [], []
    stack = [(root[0], root[1], angle, 0.17, 1.0, 0)]
    while stack:
        u, v, a, length, w, depth = stack.pop()
        n = max(2, int(length / step))
        t = np.linspace(0.0, length, n)
        wiggle = np.cumsum(rng.normal(0, 0.02, n))
        us.append(u + t * np.cos(a + wiggle))
        vs.append(v + t * np.sin(a + wiggle))
        ws.append(np.full(n, w))
        if depth < 5:
            ue, ve = us[-1][-1], vs[-1][-1]
            for da in (-0.45, 0.4):
                stack.append((ue, ve, a + da + rng.normal(0, 0.12), length * 0.78,
                              w * 0.72, depth + 1))
    return np.concatenate(us), np.concatenate(vs), np.concatenate(ws)


@lru_cache(maxsize=4)
def _markings_bank(size: int) -> tuple[np.ndarray, ...]:
    """Six maps of branching pulmonary vessels radiating from the hila, drawn once per size at
    1.5x resolution in canonical coordinates, then looked up per study."""
    res = int(size * 1.5)
    rng = np.random.default_rng(7)
    bank = []
    for _ in range(6):
        acc = np.zeros(res * res, dtype=np.float64)
        for side, (hu, hv) in HILA.items():
            sgn = -1.0 if side == "right" else 1.0
            for a in np.linspace(-1.9, 1.9, 7) + rng.normal(0, 0.12, 7):
                ang = a if sgn > 0 else np.pi - a  # fan out laterally, up and down
                u, v, w = _tree_points(rng, (hu, hv), ang, 1.0 / res)
                iu = np.clip(((u + 1) / 2 * res).astype(int), 0, res - 1)
                iv = np.clip(((v + 1) / 2 * res).astype(int), 0, res - 1)
                acc += np.bincount(iv * res + iu, weights=w, minlength=res * res)
        img = ndimage.gaussian_filter(acc.reshape(res, res), res / 384 * 1.1)
        bank.append((img / np.percentile(img[img > 0], 99)).clip(0, 1.5).astype(np.float32))
    return tuple(bank)


def markings(fr: Frame, which: int) -> np.ndarray:
    bank = _markings_bank(fr.u.shape[0])[which]
    res = bank.shape[0]
    iu = np.clip(((fr.u + 1) * (res / 2)).astype(np.int32), 0, res - 1)
    iv = np.clip(((fr.v + 1) * (res / 2)).astype(np.int32), 0, res - 1)
    return bank[iv, iu]
