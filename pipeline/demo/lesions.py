"""Findings drawn into phantom layers, the way the IKI explanations describe them.

Each category has an optional *adjuster* (changes the anatomy before it is drawn: a big heart,
flat diaphragms, volume loss) and a *painter* (writes into :class:`pipeline.demo.phantom.Layers`).
Painters take ``(frame, anatomy, layers, finding, rng)``; sizes are in canonical units
(``CM`` per centimetre).
"""

from __future__ import annotations

import numpy as np

from pipeline.demo.phantom import (
    CM,
    HILA,
    ZONES,
    Anatomy,
    Frame,
    Layers,
    add_fill,
    build_layers,
    carina_v,
    compose,
    dome_v,
    lung_field,
    make_frame,
    markings,
    noise_bank,
    ramp,
    rib_profile,
    sample_acquisition,
    sample_anatomy,
)

_SEV = {"mild": 0, "moderate": 1, "severe": 2, None: 1}


def _sides(f) -> tuple[str, ...]:
    return ("right", "left") if f.side in ("bilateral", None) else (f.side,)


def _texture(fr: Frame, rng: np.random.Generator, coarse: bool = False) -> np.ndarray:
    """A randomly shifted copy of the fine (net-like) or coarse (fluffy) noise field."""
    field = noise_bank(fr.u.shape[0])[1 if coarse else 0]
    return np.roll(field, tuple(int(a) for a in rng.integers(0, fr.u.shape[0], 2)), (0, 1))


def _disk(fr: Frame, cu: float, cv: float, r: float, lobes: float = 0.0,
          rng: np.random.Generator | None = None) -> np.ndarray:
    """Soft disk (0..1) of radius r, optionally lobulated; profile of a sphere's thickness."""
    du, dv = fr.u - cu, fr.v - cv
    rad = np.full_like(du, r)
    if lobes and rng is not None:
        th = np.arctan2(dv, du)
        rad = r * (1 + lobes * np.sin(3 * th + rng.uniform(0, 6)) + 0.6 * lobes * np.sin(5 * th))
    rr = np.sqrt(du * du + dv * dv) / rad
    return ramp(1.0 - rr, max(fr.edge / r, 0.05)) * (0.6 + 0.4 * np.sqrt(np.clip(1 - rr * rr, 0, 1)))


def _spot(fr: Frame, an: Anatomy, side: str, region: str | None,
          rng: np.random.Generator) -> tuple[float, float]:
    """A point well inside the lung field of ``side`` in a zone, as (u, v)."""
    lo, hi = ZONES.get(region or "", ZONES["middle"])
    sgn = -1.0 if side == "right" else 1.0
    for _ in range(20):
        e, v = rng.uniform(0.25, 0.62), rng.uniform(lo, hi)
        probe = Frame(np.array([[sgn * e]], np.float32), np.array([[v]], np.float32), 0.06,
                      fr.px, fr.acq)
        if lung_field(probe, an, side)[0, 0] > 0.99 and not (side == "left" and e < 0.33 and v > -0.05):
            break
    return sgn * e, v


# --- adjusters --------------------------------------------------------------------------------

def adjust_cardiomegaly(an: Anatomy, f, rng) -> None:
    lo, hi = ((0.53, 0.57), (0.58, 0.63), (0.64, 0.71))[_SEV[f.severity]]
    an.ctr = float(rng.uniform(lo, hi))


def adjust_emphysema(an: Anatomy, f, rng) -> None:
    k = _SEV[f.severity]
    an.dia_r += 0.06 + 0.04 * k
    an.dia_l += 0.05 + 0.04 * k
    an.dome_h = 0.07 - 0.02 * k
    an.air *= 1.12 + 0.08 * k
    an.ctr = min(an.ctr, 0.41)
    an.apex -= 0.02


def adjust_atelectasis(an: Anatomy, f, rng) -> None:
    k = _SEV[f.severity]
    for side in _sides(f):
        lift = (0.0, 0.03, 0.08)[k]
        if side == "right":
            an.dia_r -= lift
        else:
            an.dia_l -= lift
    if k == 2:
        an.shift += 0.035 if f.side == "left" else -0.035


def adjust_fibrosis(an: Anatomy, f, rng) -> None:
    an.dia_r -= 0.02 + 0.02 * _SEV[f.severity]
    an.dia_l -= 0.02 + 0.02 * _SEV[f.severity]


def adjust_mediastinum(an: Anatomy, f, rng) -> None:
    an.med_w = float(rng.uniform(0.17, 0.22))


ADJUSTERS = {"cardiomegaly": adjust_cardiomegaly, "emphysema": adjust_emphysema,
             "atelectasis": adjust_atelectasis, "fibrosis": adjust_fibrosis,
             "enlarged_cardiomediastinum": adjust_mediastinum}


# --- painters ---------------------------------------------------------------------------------

def paint_effusion(fr: Frame, an: Anatomy, L: Layers, f, rng) -> None:
    """Dependent fluid: homogeneous basal opacity with a meniscus rising laterally; severity
    sets its height (mild only blunts the costophrenic angle)."""
    h, rise = ((0.12, 0.15), (0.28, 0.13), (0.52, 0.14))[_SEV[f.severity]]
    h *= rng.uniform(0.85, 1.15)
    for side in _sides(f):
        cp = an.dia_r if side == "right" else an.dia_l
        frac = np.clip((fr.lateral(side) - 0.1) / (an.lung_w - 0.1), 0.0, 1.0)
        top = cp - h - rise * frac * frac
        fluid = np.clip((fr.v - top) / 0.07, 0.0, 1.0) * L.lung[side]
        add_fill(L, 0.97 * fluid)
        L.keep *= 1.0 - fluid
        L.dense += 0.08 * fluid


def paint_pneumothorax(fr: Frame, an: Anatomy, L: Layers, f, rng) -> None:
    """A thin visceral pleural line with no lung markings beyond it, toward apex and wall."""
    collapse, drop = ((0.07, 0.10), (0.22, 0.17), (0.42, 0.26))[_SEV[f.severity]]
    for side in _sides(f):
        inner = lung_field(fr, an, side, collapse=collapse, apex_drop=drop)
        gap = np.clip(L.lung[side] - inner, 0.0, 1.0)
        L.keep *= 1.0 - gap
        L.lucent += 0.22 * gap
        L.dense += 0.12 * 4.0 * inner * (1.0 - inner) * L.lung[side]
        add_fill(L, 0.1 * _SEV[f.severity] * inner)


def paint_consolidation(fr: Frame, an: Anatomy, L: Layers, f, rng) -> None:
    """Dense airspace opacity in a zone; consolidation shows air bronchograms, pneumonia is
    patchier. Severity sets the number and size of the confluent patches."""
    k = _SEV[f.severity] if f.category == "consolidation" else int(rng.integers(0, 3))
    tex, fluffy = _texture(fr, rng), _texture(fr, rng, coarse=True)
    for side in _sides(f):
        region = "lower" if f.region == "retrocardiac" else f.region
        cu, cv = _spot(fr, an, side, region, rng)
        if f.region == "retrocardiac":
            cu = 0.2 + 0.08 * rng.random()
        blob = np.zeros_like(fr.u)
        for _ in range(3 + 2 * k):  # confluent patches, not one round blob
            du, dv = rng.normal(0, 0.07 + 0.03 * k, 2)
            r = rng.uniform(0.06, 0.09) + 0.02 * k
            blob += np.exp(-((fr.u - cu - du) ** 2 + (fr.v - cv - dv) ** 2) / (r * r))
        lo, hi = ZONES.get(region or "", ZONES["middle"])
        lobe = ramp(fr.v - lo + 0.05, 0.02) * ramp(hi + 0.05 - fr.v, 0.02)  # fissure-bounded
        if f.category == "consolidation":
            op = np.clip(1.0 * blob - 0.15 + 0.3 * fluffy, 0, 1) * lobe
            op *= 1.0 - 0.3 * markings(fr, 5) * np.clip(blob, 0, 1)  # air bronchograms
        else:
            op = np.clip(blob * (0.7 + 0.3 * tex + 0.25 * fluffy) - 0.15, 0, 1)
        add_fill(L, 0.88 * op * L.lung[side])


def paint_atelectasis(fr: Frame, an: Anatomy, L: Layers, f, rng) -> None:
    """Plate-like band (mild), basal patchy opacity (moderate), or lobar collapse with volume
    loss (severe: right upper lobe, or left lower lobe behind the heart)."""
    k = _SEV[f.severity]
    for side in _sides(f):
        e, lung = fr.lateral(side), L.lung[side]
        top = dome_v(fr, an, side)
        if k == 0:
            vb = an.dia_r if side == "right" else an.dia_l
            vb = vb - an.dome_h - rng.uniform(0.05, 0.12)
            band = ramp(0.012 - np.abs(fr.v - vb - 0.12 * (e - 0.45)), fr.edge)
            add_fill(L, 0.9 * band * ramp(e - 0.25, 0.05) * ramp(0.66 - e, 0.05) * lung * (1 - L.heart))
        elif k == 1:
            patch = ramp(fr.v - top + 0.13, 0.1) * (0.7 + 0.3 * _texture(fr, rng))
            add_fill(L, 0.75 * np.clip(patch, 0, 1) * lung)
        elif side == "right":
            fissure = -0.20 - 0.55 * (e - 0.12)
            add_fill(L, 0.95 * ramp(fissure - fr.v, fr.edge) * lung)
        else:
            hv = HILA["left"][1]
            wedge = 0.10 + 0.38 * np.clip((fr.v - hv) / (an.dia_l - hv), 0, 1)
            tri = ramp(wedge - e, fr.edge) * ramp(fr.v - hv, 0.05)
            add_fill(L, 0.97 * tri * lung)
            L.dense += 0.06 * tri * lung


def paint_edema(fr: Frame, an: Anatomy, L: Layers, f, rng) -> None:
    """Bilateral perihilar haze (bat-wing when severe) with interstitial (Kerley B) lines."""
    k = _SEV[f.severity]
    tex = _texture(fr, rng, coarse=True)
    kerley = ramp(0.16 - np.abs((fr.v / 0.05) % 1.0 - 0.5), 0.1) * np.clip(0.6 + 0.6 * tex, 0, 1)
    for side in ("right", "left"):
        hu, hv = HILA[side]
        d2 = ((fr.u - hu) / (0.26 + 0.06 * k)) ** 2 + ((fr.v - hv) / 0.36) ** 2
        haze = np.exp(-d2) * (0.85 + 0.3 * tex)
        lines = kerley * ramp(fr.lateral(side) - 0.6, 0.04) * ramp(fr.v - 0.08, 0.05)
        add_fill(L, ((0.35, 0.55, 0.8)[k] * haze + 0.3 * lines) * L.lung[side])


def paint_lesion(fr: Frame, an: Anatomy, L: Layers, f, rng) -> None:
    """Nodule (round, <= 3 cm), mass (lobulated, > 3 cm) or calcified granuloma."""
    side = f.side if f.side in ("right", "left") else "right"
    cu, cv = _spot(fr, an, side, f.region, rng)
    r = f.detail.get("size_cm", 2.0) * CM / 2.0
    disk = _disk(fr, cu, cv, r, 0.1 if f.category == "mass" else 0.0, rng)
    add_fill(L, 0.97 * disk)
    L.dense += (0.35 if f.category == "granuloma" else 0.08) * disk


def paint_emphysema(fr: Frame, an: Anatomy, L: Layers, f, rng) -> None:
    """Hyperlucent lungs with sparse markings (the flat diaphragms come from the adjuster);
    bullae in the upper zones when severe."""
    L.keep *= 1.0 - 0.45 * ramp(-0.05 - fr.v, 0.3)
    for _ in range(_SEV[f.severity] + (1 if f.severity == "severe" else 0)):
        side = "right" if rng.random() < 0.5 else "left"
        cu, cv = _spot(fr, an, side, "upper", rng)
        bulla = _disk(fr, cu, cv, rng.uniform(0.06, 0.1))
        L.keep *= 1.0 - bulla
        L.lucent += 0.12 * bulla * L.lung[side]
        L.dense += 0.05 * 4 * bulla * (1 - bulla) * (bulla > 0.05)


def paint_fibrosis(fr: Frame, an: Anatomy, L: Layers, f, rng) -> None:
    """Coarse basal-predominant reticulation (the noise field's zero set makes a net)."""
    net = np.exp(-(_texture(fr, rng) / 0.45) ** 2)
    for side in ("right", "left"):
        basal = ramp(fr.v - dome_v(fr, an, side) + 0.30 + 0.08 * _SEV[f.severity], 0.2)
        add_fill(L, (0.3 + 0.12 * _SEV[f.severity]) * net * basal * L.lung[side])


def paint_pleural_thickening(fr: Frame, an: Anatomy, L: Layers, f, rng) -> None:
    """An apical pleural cap: smooth band along the lung apex."""
    thick = rng.uniform(1.2, 2.0) * CM
    for side in _sides(f):
        cap = np.clip(L.lung[side] - lung_field(fr, an, side, collapse=0.025, apex_drop=thick), 0, 1)
        add_fill(L, 0.95 * cap)
        L.dense += 0.05 * cap


def paint_hernia(fr: Frame, an: Anatomy, L: Layers, f, rng) -> None:
    """Hiatal hernia: retrocardiac round density with an air-fluid level."""
    cu, cv, r = rng.uniform(0.0, 0.08), an.heart_v + rng.uniform(0.02, 0.08), rng.uniform(0.09, 0.13)
    sac = _disk(fr, cu, cv, r)
    gas = sac * ramp(cv - 0.1 * r - fr.v, fr.edge)
    L.dense += 0.14 * sac - 0.40 * gas


def paint_nothing(fr: Frame, an: Anatomy, L: Layers, f, rng) -> None:
    """For findings drawn entirely by their adjuster (heart size, mediastinal width)."""


def paint_fracture(fr: Frame, an: Anatomy, L: Layers, f, rng) -> None:
    """Lateral rib fractures: a lucent cortical break when nondisplaced; when displaced, a
    step-off with the fragments overriding (double density); callus when healing."""
    d = f.detail
    e = fr.lateral(f.side if f.side in ("right", "left") else "right")
    q = L.rib_q
    for i in range(d.get("count", 1)):
        k = d.get("rib", 6) - 1 + i
        pos = d.get("pos", 0.5) - 0.02 * i
        near = 0.30 * L.bone_fade * ramp(0.16 - np.abs(e - pos), 0.02) * (np.abs(q - k - 0.25) < 0.55)
        if d.get("displaced"):
            shifted = rib_profile(q + 0.5)
            overlap = (e > pos - 0.045) & (e <= pos)
            L.bone += near * (np.where(e > pos, shifted - rib_profile(q), 0.0) + 2.6 * overlap * shifted)
        else:
            L.bone -= near * rib_profile(q) * ramp(0.022 - np.abs(e - pos), fr.edge * 0.7)
        if d.get("healing"):  # fusiform callus around the break
            L.dense += 0.5 * np.exp(-((e - pos) / 0.045) ** 2 - ((q - k - 0.3) / 0.5) ** 2)


def paint_devices(fr: Frame, an: Anatomy, L: Layers, f, rng) -> None:
    """Radiopaque tubes and lines stroked into ``layers.lines`` (blurred once in compose)."""
    car = carina_v(an)
    paths = {
        "ett": [(0.0, -1.1), (0.0, -0.75), (an.shift * 0.5, car - f.detail.get("ett_cm", 4) * CM)],
        "ng": [(0.02, -1.1), (0.03, -0.4), (0.06, 0.3), (0.2, an.dia_l), (0.32, an.dia_l + 0.08)],
        "cvc_right": [(-0.22, -1.1), (-0.12, -0.7), (-0.07, -0.45), (-0.06, -0.25)],
        "cvc_left": [(0.6, -0.7), (0.3, -0.62), (0.05, -0.52), (-0.05, -0.3)],
        "picc": [(-0.95, -0.55), (-0.55, -0.66), (-0.2, -0.62), (-0.07, -0.45), (-0.06, -0.28)],
        "pacemaker": [(0.46, -0.56), (0.2, -0.6), (0.0, -0.45), (-0.05, -0.1), (0.15, 0.27)],
    }
    for dev in f.detail.get("devices", ["ett"]):
        pts = np.array(paths[dev], np.float32)
        _stroke(fr, L, pts, 1.0 if dev != "ett" else 0.7)
        if dev == "ett":
            _stroke(fr, L, pts + np.float32([0.018, 0.0]), 0.5)
            _stroke(fr, L, pts - np.float32([0.018, 0.0]), 0.5)
        if dev == "pacemaker":
            box = ramp(0.07 - np.abs(fr.u - 0.5), fr.edge) * ramp(0.05 - np.abs(fr.v + 0.56), fr.edge)
            L.dense += 0.8 * box


def _stroke(fr: Frame, L: Layers, pts: np.ndarray, amp: float) -> None:
    """Splat a polyline (canonical points) into the lines layer, ~2 samples per pixel."""
    seg = np.diff(pts, axis=0)
    n = np.maximum(2, (np.hypot(seg[:, 0], seg[:, 1]) / fr.px * 2).astype(int))
    t = [np.linspace(0, 1, k, endpoint=False) for k in n]
    u = np.concatenate([p[0] + tt * s[0] for p, s, tt in zip(pts[:-1], seg, t, strict=True)])
    v = np.concatenate([p[1] + tt * s[1] for p, s, tt in zip(pts[:-1], seg, t, strict=True)])
    x, y = fr.to_pixel(u, v)
    size = L.lines.shape[0]
    ok = (x >= 0) & (x < size - 1) & (y >= 0) & (y < size - 1)
    idx = np.round(y[ok]).astype(int) * size + np.round(x[ok]).astype(int)
    L.lines.ravel()[:] += np.bincount(idx, minlength=size * size).astype(np.float32) * (amp * 0.5)


PAINTERS = {
    "pleural_effusion": paint_effusion, "pneumothorax": paint_pneumothorax,
    "consolidation": paint_consolidation, "pneumonia": paint_consolidation,
    "atelectasis": paint_atelectasis, "edema": paint_edema, "nodule": paint_lesion,
    "mass": paint_lesion, "granuloma": paint_lesion, "emphysema": paint_emphysema,
    "fibrosis": paint_fibrosis, "pleural_thickening": paint_pleural_thickening,
    "hernia": paint_hernia, "enlarged_cardiomediastinum": paint_nothing,
    "fracture": paint_fracture, "support_devices": paint_devices, "cardiomegaly": paint_nothing,
}


def render(findings, view: str, size: int, rng: np.random.Generator) -> np.ndarray:
    """One radiograph (H, W) float32 in [0, 1] showing every present/uncertain finding."""
    acq = sample_acquisition(rng, view)
    an = sample_anatomy(rng, view)
    shown = [f for f in findings if f.presence != "absent" and f.category in PAINTERS]
    for f in shown:
        if f.category in ADJUSTERS:
            ADJUSTERS[f.category](an, f, rng)
    fr = make_frame(size, acq)
    layers = build_layers(fr, an, acq)
    for f in shown:
        PAINTERS[f.category](fr, an, layers, f, rng)
    return compose(fr, an, acq, layers, rng)
