"""Radiology report prose generated from a study's truth.

FINDINGS and IMPRESSION sections with varied phrasing and ordering; hedges ("may represent",
"cannot exclude") for ``uncertain`` findings; explicit negations ("No pneumothorax or pleural
effusion.") that are added to the truth as ``absent`` findings; severity and location words for
every finding that carries them. Sentences that call a finding an "opacity" add a
``lung_opacity`` finding to the truth. Nothing here knows about any extractor.
"""

from __future__ import annotations

import numpy as np

from pipeline.demo.casemix import TruthFinding

SEV_WORDS = {
    "pleural_effusion": {"mild": ("small", "trace"), "moderate": ("moderate", "moderate-sized"),
                         "severe": ("large",)},
    "pneumothorax": {"mild": ("small", "tiny"), "moderate": ("moderate", "moderate-sized"),
                     "severe": ("large",)},
    "cardiomegaly": {"mild": ("mild",), "moderate": ("moderate",), "severe": ("marked", "severe")},
    "consolidation": {"mild": ("small", "mild"), "moderate": ("moderate",),
                      "severe": ("extensive", "large")},
    "atelectasis": {"mild": ("mild", "minimal", "subsegmental", "plate-like"),
                    "moderate": ("moderate", "segmental"), "severe": ("complete",)},
    "edema": {"mild": ("mild",), "moderate": ("moderate",), "severe": ("severe", "marked")},
    "emphysema": {"mild": ("mild",), "moderate": ("moderate",), "severe": ("severe", "advanced")},
    "fibrosis": {"mild": ("mild",), "moderate": ("moderate",), "severe": ("severe", "advanced")},
}
ADVERB = {"mild": ("mildly",), "moderate": ("moderately",), "severe": ("markedly", "severely")}
LOBE = {("right", "upper"): ("right upper lobe", "right upper lung zone"),
        ("right", "middle"): ("right middle lobe", "right mid lung"),
        ("right", "lower"): ("right lower lobe", "right lung base"),
        ("left", "upper"): ("left upper lobe", "left upper lung zone"),
        ("left", "middle"): ("lingula", "left mid lung"),
        ("left", "lower"): ("left lower lobe", "left lung base"),
        ("bilateral", "upper"): ("bilateral upper lobes", "both upper lobes"),
        ("bilateral", "middle"): ("bilateral mid lungs", "both mid lung zones"),
        ("bilateral", "lower"): ("bilateral lower lobes", "both lung bases"),
        ("left", "retrocardiac"): ("left retrocardiac region", "left retrocardiac lung")}
HEDGES = ("Possible {np}.", "Cannot exclude {np}.", "Questionable {np}.",
          "{Np} cannot be excluded.", "Findings could represent {np}.")
OPACITY_HEDGES = ("{Loc} opacity may represent {word}.", "{Loc} opacity, which could represent {word}.",
                  "Patchy {loc} opacity, concerning for {word}.")
NEG_TERMS = {"consolidation": "focal consolidation", "pleural_effusion": "pleural effusion",
             "pneumothorax": "pneumothorax", "edema": "pulmonary edema"}
NEG_SINGLE = {
    "cardiomegaly": ("Heart size is normal.", "The heart is normal in size.", "No cardiomegaly."),
    "enlarged_cardiomediastinum": ("The cardiomediastinal silhouette is within normal limits.",
                                   "Mediastinal contours are normal."),
    "fracture": ("No acute rib fracture.", "No displaced rib fractures."),
    "nodule": ("No suspicious pulmonary nodules.",),
    "pneumonia": ("No radiographic evidence of pneumonia.",),
}
DEVICE_TEXT = {
    "ett": ("Endotracheal tube terminates {cm} cm above the carina.",
            "ET tube tip is {cm} cm above the carina."),
    "ng": ("Enteric tube courses below the diaphragm with the tip in the stomach.",
           "Nasogastric tube tip is in the stomach."),
    "cvc_right": ("Right internal jugular central venous catheter terminates in the SVC.",
                  "Right IJ central line tip projects over the SVC."),
    "cvc_left": ("Left subclavian central venous catheter with tip in the SVC.",),
    "picc": ("Right PICC line terminates in the lower SVC.", "Right-sided PICC with tip in the SVC."),
    "pacemaker": ("Left chest wall pacemaker with leads in the right atrium and right ventricle.",
                  "Dual-chamber pacemaker in the left chest wall, leads in standard position."),
}
ORDINAL = {3: "third", 4: "fourth", 5: "fifth", 6: "sixth", 7: "seventh", 8: "eighth",
           9: "ninth", 10: "tenth"}
COUNTABLE = {"pleural_effusion", "pneumothorax", "nodule", "mass", "granuloma", "fracture",
             "hernia"}
# A negation is not said when a finding it would contradict is shown.
CONTRADICTS = {"enlarged_cardiomediastinum": {"cardiomegaly"}, "pneumonia": {"consolidation"},
               "consolidation": {"pneumonia"}, "nodule": {"mass"},
               "cardiomegaly": {"enlarged_cardiomediastinum"}}
PARENCHYMA = {"consolidation", "pneumonia", "atelectasis", "edema", "nodule", "mass",
              "granuloma", "fibrosis", "emphysema"}
ORDER = ("support_devices", "consolidation", "pneumonia", "lung_opacity", "atelectasis", "edema",
         "nodule", "mass", "granuloma", "fibrosis", "emphysema", "pleural_effusion", "pneumothorax",
         "pleural_thickening", "cardiomegaly", "enlarged_cardiomediastinum", "hernia", "fracture")


class _Writer:
    """Holds the rng and the truth being completed while one report is written."""

    def __init__(self, rng: np.random.Generator, banned: frozenset[str]):
        self.rng, self.banned = rng, banned
        self.implied: list[TruthFinding] = []

    def pick(self, options):
        return options[int(self.rng.integers(len(options)))]

    def sev(self, f: TruthFinding) -> str:
        return self.pick(SEV_WORDS[f.category][f.severity]) if f.severity else ""

    def loc(self, f: TruthFinding) -> str:
        if (f.side, f.region) in LOBE:
            return self.pick(LOBE[(f.side, f.region)])
        return " ".join(w for w in (f.side, f.region) if w)

    def opacity(self, f: TruthFinding, loc: str) -> None:
        if "lung_opacity" not in self.banned:
            self.implied.append(TruthFinding("lung_opacity", "present", None, f.side, f.region))


def _adjective(loc: str) -> str:
    return "lingular" if loc == "lingula" else loc


def _cap(s: str) -> str:
    s = " ".join(s.split())
    return s[:1].upper() + s[1:]


def _np(w: _Writer, f: TruthFinding) -> str:
    """A noun phrase for the finding carrying its severity and location words."""
    sev, c = w.sev(f), f.category
    side = f.side or ""
    if c == "pleural_effusion":
        plural = side == "bilateral"
        np_ = f"{sev} {side} pleural effusion{'s' if plural else ''}"
        if f.region == "costophrenic":
            np_ += " blunting " + ("both costophrenic angles" if plural else "the costophrenic angle")
        return np_
    if c == "pneumothorax":
        return f"{sev} {side} {f.region or ''} pneumothorax"
    if c in ("consolidation", "pneumonia"):
        loc = w.loc(f)
        return w.pick((f"{sev} {_adjective(loc)} {c}", f"{sev} {c} in the {loc}"))
    if c == "atelectasis":
        if f.severity == "severe":
            lobe = "right upper lobe" if f.region == "upper" else "left lower lobe (retrocardiac)"
            return f"complete {lobe} collapse"
        where = {"right": "right basilar", "left": "left basilar", "bilateral": "bibasilar"}[side]
        return f"{sev} {where} atelectasis"
    if c == "edema":
        kind = w.pick(("pulmonary", "interstitial", "")) if f.region is None else "perihilar"
        return f"{sev} {'bilateral' if side else ''} {kind} edema"
    if c in ("nodule", "mass", "granuloma"):
        size = f.detail.get("size_cm", 2.0)
        noun = {"nodule": "pulmonary nodule", "mass": "mass", "granuloma": "calcified granuloma"}[c]
        return w.pick((f"{size} cm {noun} in the {w.loc(f)}",
                       f"{_adjective(w.loc(f))} {noun} measuring {size} cm"))
    if c == "emphysema":
        return f"{sev} {'bilateral' if side else ''} {'upper lobe predominant' if f.region else ''} emphysema"
    if c == "fibrosis":
        return w.pick((f"{sev} bibasilar pulmonary fibrosis", f"{sev} fibrosis at both lung bases"))
    if c == "pleural_thickening":
        return f"{side} apical pleural thickening"
    if c == "hernia":
        if f.region:
            return w.pick(("retrocardiac hiatal hernia", "hiatal hernia with a retrocardiac air-fluid level"))
        return w.pick(("hiatal hernia", "hiatus hernia"))
    if c == "cardiomegaly":
        return f"{sev} cardiomegaly"
    if c == "enlarged_cardiomediastinum":
        return w.pick(("widening of the superior mediastinum", "widened mediastinum"))
    if c == "fracture":
        d = f.detail
        ribs = ORDINAL[d["rib"]] + (f" and {ORDINAL[d['rib'] + 1]}" if d.get("count", 1) > 1 else "")
        kind = "healing" if d.get("healing") else ("displaced" if d.get("displaced") else "nondisplaced")
        return f"{kind} fracture{'s' if d.get('count', 1) > 1 else ''} of the {side} lateral {ribs} rib{'s' if d.get('count', 1) > 1 else ''}"
    raise KeyError(c)


def _present(w: _Writer, f: TruthFinding) -> str:
    c = f.category
    if c == "support_devices":
        return " ".join(w.pick(DEVICE_TEXT[d]).format(cm=f.detail.get("ett_cm", 4))
                        for d in f.detail["devices"])
    if c == "cardiomegaly" and w.rng.random() < 0.5:
        return _cap(f"The heart is {w.pick(ADVERB[f.severity])} enlarged.")
    if c == "pneumonia" and w.rng.random() < 0.4:
        w.opacity(f, "")
        if "lung_opacity" not in w.banned:
            return _cap(f"{w.loc(f)} airspace opacity consistent with pneumonia.")
    if c == "emphysema" and w.rng.random() < 0.4:
        return _cap(f"Hyperinflated lungs with flattened hemidiaphragms, consistent with {_np(w, f)}.")
    if c == "pleural_effusion" and f.region == "costophrenic" and w.rng.random() < 0.6:
        if f.side == "bilateral":
            return _cap(f"Blunting of both costophrenic angles, consistent with {w.sev(f)} "
                        "bilateral pleural effusions.")
        return _cap(f"Blunting of the {f.side} costophrenic angle, consistent with a {w.sev(f)} "
                    "pleural effusion.")
    np_ = " ".join(_np(w, f).split())
    if c in COUNTABLE:
        there = "there are" if np_.endswith("s") else "there is " + ("an" if np_[0] in "aeiou" else "a")
    else:
        there = "there is"
    return _cap(w.pick(("{np}.", "{there} {np}.", "{np} is seen.", "{np} is present."))
                .format(np=np_, there=there))


def _uncertain(w: _Writer, f: TruthFinding) -> str:
    if f.category in ("pneumonia", "consolidation", "atelectasis") and f.region in (
            "upper", "middle", "lower", "retrocardiac") and "lung_opacity" not in w.banned \
            and w.rng.random() < 0.6:
        w.opacity(f, "")
        sev = w.sev(f)
        word = {"pneumonia": "pneumonia", "consolidation": "consolidation",
                "atelectasis": "atelectasis"}[f.category]
        loc = f"{sev} {_adjective(w.loc(f))}".strip()
        return _cap(w.pick(OPACITY_HEDGES).format(loc=loc, Loc=_cap(loc), word=word))
    np_ = " ".join(_np(w, f).split())
    return _cap(w.pick(HEDGES).format(np=np_, Np=_cap(np_)))


def _sentence(w: _Writer, f: TruthFinding) -> str:
    return _uncertain(w, f) if f.presence == "uncertain" else _present(w, f)


def _negations(w: _Writer, findings: list[TruthFinding]) -> tuple[list[str], list[TruthFinding]]:
    """Sentences that negate absent categories, and the matching ``absent`` truth."""
    shown = {f.category for f in findings}

    def sayable(c: str) -> bool:
        return c not in shown and c not in w.banned and not CONTRADICTS.get(c, set()) & shown

    free = [c for c in NEG_TERMS if sayable(c)]
    sentences, absent = [], []
    if free:
        k = int(w.rng.integers(1, min(3, len(free)) + 1))
        chosen = [free[i] for i in sorted(w.rng.choice(len(free), size=k, replace=False))]
        terms = [NEG_TERMS[c] for c in chosen]
        if len(terms) == 1:
            text = w.pick(("No {0}.", "There is no {0}.", "No evidence of {0}."))
        elif len(terms) == 2:
            text = w.pick(("No {0} or {1}.", "There is no {0} or {1}."))
        else:
            text = w.pick(("No {0}, {1}, or {2}.", "There is no {0}, {1} or {2}."))
        sentences.append(text.format(*terms))
        absent += [TruthFinding(c, "absent") for c in chosen]
    for c, options in NEG_SINGLE.items():
        if sayable(c) and w.rng.random() < 0.35:
            sentences.append(w.pick(options))
            absent.append(TruthFinding(c, "absent"))
    for f in findings:  # "Small left pleural effusion. No right effusion."
        if f.category in ("pleural_effusion", "pneumothorax") and f.side in ("left", "right") \
                and sum(g.category == f.category for g in findings) == 1 and w.rng.random() < 0.3:
            other = "right" if f.side == "left" else "left"
            term = "pleural effusion" if f.category == "pleural_effusion" else "pneumothorax"
            sentences.append(f"No {other} {term}.")
            absent.append(TruthFinding(f.category, "absent", side=other))
    return sentences, absent


def _indication(w: _Writer, findings: list[TruthFinding]) -> str:
    cats = {f.category for f in findings}
    options = ["Shortness of breath.", "Cough.", "Chest pain.", "Fever and cough.", "Dyspnea.",
               "Preoperative evaluation.", "Follow-up.", "Hypoxia."]
    if "fracture" in cats:
        options = ["Fall, chest wall pain.", "Trauma.", "Rib pain after a fall."]
    elif "support_devices" in cats:
        options = ["Line placement.", "Intubated patient.", "Evaluate tube position."]
    age = int(w.rng.integers(25, 90))
    sex = w.pick(("man", "woman"))
    return w.pick((w.pick(options), f"{age}-year-old {sex}. {w.pick(options)}"))


def _impression(w: _Writer, findings: list[TruthFinding], body: list[str]) -> str:
    main = [f for f in findings if f.category != "support_devices"][:3]
    if not main:
        lines = [w.pick(("No acute cardiopulmonary process.", "No acute cardiopulmonary abnormality.",
                         "Normal chest radiograph."))]
        if findings:
            lines.append(w.pick(("Support devices as described above.", "Lines and tubes as above.")))
        return " ".join(lines)
    lines = [_sentence(w, f) for f in main]
    if len(lines) > 1 and w.rng.random() < 0.5:
        return "\n".join(f"{i}. {s}" for i, s in enumerate(lines, 1))
    return " ".join(lines)


def write_report(findings: list[TruthFinding], view: str, rng: np.random.Generator,
                 banned: frozenset[str] = frozenset()) -> tuple[str, list[TruthFinding]]:
    """The report text and the study's full truth (rendered + implied + negated findings)."""
    w = _Writer(rng, banned)
    ordered = sorted(findings, key=lambda f: ORDER.index(f.category))
    if rng.random() < 0.3:
        ordered = [ordered[i] for i in rng.permutation(len(ordered))]
    body = [_sentence(w, f) for f in ordered]
    if rng.random() < 0.25 and any(f.category == "pleural_effusion" and f.presence == "present"
                                   for f in findings):
        body = _merge_effusion_atelectasis(w, ordered, body)
    negs, absent = _negations(w, findings)
    if not any(f.category in PARENCHYMA for f in findings) and rng.random() < 0.7:
        body.insert(0, w.pick(("Lungs are clear.", "The lungs are well expanded and clear.",
                               "The lungs are clear bilaterally.")))
    body += negs
    head = [w.pick(("EXAMINATION: Chest radiograph, single frontal view.", f"EXAM: CHEST {view}",
                    "EXAMINATION: XR CHEST 1 VIEW")),
            f"INDICATION: {_indication(w, findings)}",
            "COMPARISON: " + w.pick(("None.", "None available.", "No prior studies."))]
    if view == "AP" and rng.random() < 0.6:
        head.append("TECHNIQUE: Portable AP view of the chest.")
    impression = _impression(w, ordered, body)
    text = "\n".join(head) + "\n\nFINDINGS: " + " ".join(body) + "\n\nIMPRESSION: " + impression + "\n"
    return text, [*findings, *_dedupe(w.implied), *absent]


def _merge_effusion_atelectasis(w: _Writer, ordered: list[TruthFinding], body: list[str]) -> list[str]:
    """"Small left pleural effusion with adjacent basilar atelectasis." when both are present."""
    eff = next(i for i, f in enumerate(ordered) if f.category == "pleural_effusion")
    ate = next((i for i, f in enumerate(ordered) if f.category == "atelectasis"
                and f.presence == "present" and f.side == ordered[eff].side
                and f.region == "basilar"), None)
    if ate is None or ordered[eff].region:
        return body
    e, a = ordered[eff], ordered[ate]
    merged = _cap(f"{_np(w, e)} with adjacent {w.sev(a)} basilar atelectasis.")
    return [merged if i == eff else s for i, s in enumerate(body) if i != ate]


def _dedupe(found: list[TruthFinding]) -> list[TruthFinding]:
    seen, out = set(), []
    for f in found:
        key = (f.category, f.side, f.region)
        if key not in seen:
            seen.add(key)
            out.append(f)
    return out
