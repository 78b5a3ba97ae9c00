"""Image viewer: window/level on the high-bit pixel file, presets, invert, zoom and pan.

The stored training file keeps the source's bit depth (8 or 16 bit, MONOCHROME2: bright =
dense), so windowing here sees every grey level the DICOM had. The DICOM window (centre, width)
is the default. CR/DX values are not Hounsfield units, so the presets are set on the image's
own value percentiles: lung = the dark half of the range, mediastinum = the bright middle,
bone = the brightest values, narrow. Rendering is cached per (file, window, invert), so moving a
slider back to a setting seen before is instant; the long side is capped at ``VIEW_MAX_PX``.
"""

from __future__ import annotations

import numpy as np
import plotly.express as px
import streamlit as st
from PIL import Image as PILImage

from curation_app import state
from db.models import Image

VIEW_MAX_PX = 2048  # long side shown; ingest's display PNG stays small for lists
PRESETS = {"lung": (5, 60), "mediastinum": (40, 97), "bone": (75, 99.7)}  # value percentiles


@st.cache_data(max_entries=8, show_spinner=False)
def _pixels(path: str) -> np.ndarray:
    """The pixel file as float32, reduced to at most VIEW_MAX_PX on the long side."""
    img = PILImage.open(path)
    factor = -(-max(img.size) // VIEW_MAX_PX)
    if factor > 1:
        img = img.reduce(factor)
    return np.asarray(img, dtype=np.float32)


@st.cache_data(max_entries=8, show_spinner=False)
def _percentiles(path: str) -> dict[float, float]:
    pixels = _pixels(path)
    qs = sorted({q for pair in PRESETS.values() for q in pair} | {0.0, 100.0})
    return dict(zip(qs, np.percentile(pixels[::4, ::4], qs).tolist(), strict=True))


@st.cache_data(max_entries=64, show_spinner=False)
def render(path: str, center: float, width: float, invert: bool) -> np.ndarray:
    """(H, W) uint8 of the windowed pixels (DICOM PS3.3 C.11.2.1.2 linear window)."""
    pixels = _pixels(path)
    low = center - width / 2
    out = np.clip((pixels - low) / max(width, 1e-6), 0, 1)
    if invert:
        out = 1 - out
    return (out * 255).astype(np.uint8)


def _limits(path: str) -> tuple[float, float, float]:
    """Slider bounds: (lowest value, highest value, widest window)."""
    p = _percentiles(path)
    lo, hi = p[0.0], max(p[100.0], p[0.0] + 1)
    return lo, hi, (hi - lo) * 2


def default_window(img: Image, path: str) -> tuple[float, float]:
    """The stored DICOM window, else the full value range (clamped to the sliders)."""
    lo, hi, widest = _limits(path)
    center, width = ((float(img.window_center), float(img.window_width))
                     if img.window_center is not None and img.window_width
                     else ((lo + hi) / 2, hi - lo))
    return min(max(center, lo), hi), min(max(width, 1.0), widest)


def _apply_preset(key: str, path: str, preset: str) -> None:
    lo, hi = PRESETS[preset]
    p = _percentiles(path)
    st.session_state[f"{key}_c"] = round((p[lo] + p[hi]) / 2, 1)
    st.session_state[f"{key}_w"] = round(max(p[hi] - p[lo], 1.0), 1)


def show_images(images: list[Image], key: str) -> None:
    """A view switch over the study's images, then the windowed, zoomable image."""
    if not images:
        st.info("This study has no images.")
        return
    labels = [f"{i.view or 'view ?'} · {i.width}×{i.height}" for i in images]
    pick = 0
    if len(images) > 1:
        pick = st.segmented_control("View", range(len(images)), format_func=labels.__getitem__,
                                    default=0, key=f"{key}_view") or 0
    img = images[pick]
    path = state.data_path(img.path) or state.data_path(img.display_path)
    if path is None:
        st.warning(f"Pixel file missing: image {img.id}")
        return
    _viewer(img, str(path), f"{key}_{img.id}")


def _viewer(img: Image, path: str, key: str) -> None:
    lo, hi, widest = _limits(path)
    if f"{key}_c" not in st.session_state:
        st.session_state[f"{key}_c"], st.session_state[f"{key}_w"] = default_window(img, path)
    c = st.columns(2)
    center = c[0].slider("Level", float(lo), float(hi), key=f"{key}_c")
    width = c[1].slider("Window", 1.0, float(widest), key=f"{key}_w")
    with st.container(horizontal=True, vertical_alignment="center"):
        for preset in PRESETS:
            st.button(preset.capitalize(), key=f"{key}_{preset}", help=f"{preset} preset",
                      on_click=_apply_preset, args=(key, path, preset))
        st.button("DICOM window", key=f"{key}_reset", on_click=_reset, args=(key, img, path))
        invert = st.toggle("Invert", key=f"{key}_inv")
    pixels = render(path, center, width, invert)
    fig = px.imshow(pixels, color_continuous_scale="gray", zmin=0, zmax=255,
                    binary_string=True)  # one PNG to the browser, not a heatmap of numbers
    fig.update_layout(margin={"l": 0, "r": 0, "t": 0, "b": 0}, dragmode="pan",
                      height=min(760, 120 + pixels.shape[0]), coloraxis_showscale=False)
    fig.update_xaxes(visible=False)
    fig.update_yaxes(visible=False)
    st.plotly_chart(fig, key=f"{key}_fig", config={"scrollZoom": True, "displaylogo": False})
    st.caption(f"{img.view or 'view ?'} · {img.width}×{img.height} · {img.bits_stored}-bit "
               f"{img.source_format} · window {center:.0f}/{width:.0f}"
               f"{' · inverted' if invert else ''} · scroll to zoom, drag to pan")


def _reset(key: str, img: Image, path: str) -> None:
    st.session_state[f"{key}_c"], st.session_state[f"{key}_w"] = default_window(img, path)
