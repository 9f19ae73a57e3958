"""Design validation on reference footage only: where scoring choices are made, never on test clips.

    python benchmarks/validation.py [--avdata DIR] [--detectors fau,exam] [--corrupt video:3,noise:3]
    python benchmarks/validation.py --detectors exam [--exam-model DIR] [--exam-lr 0.03] [--exam-steps-per-second 3]

The persons of interest's ``ref`` clips are cut into 5-s pieces (the length of the test clips; a short
clip also gets a last piece flush with its end). Genuine: each piece. Dubbing: each piece with the audio
of the person's next piece. FauForensics never saw these clips (it is trained on ``pretrain`` rows);
EXAM scores each piece with tokens learnt on the rest of that person's reference (leave one piece out;
only persons with at least 20 s of reference, since the rest must hold 4-s windows), and with the same
tokens every other person's pieces (identity swap). Each clip's raw quantities (fake logits, or
reconstruction errors per noise level under many audio moves) are computed once; every scoring variant
in ``FAU_VARIANTS`` / ``EXAM_VARIANTS`` is arithmetic on them, and the table gives each one's dubbing
AUC (and EXAM's identity-swap AUC), mean over persons and pooled; EXAM's shipped score is also shown
normalised per person (``NORMALISATIONS``) against the calibration that enrollment would give the rest
(2-fold cross-validation over its halves), to see whether one scale across people pools better. About 22
genuine pieces: differences of a few points are noise. With ``--corrupt``, EXAM also scores each piece and its dubbed copy corrupted
by each spec (tokens still learnt on the clean rest, as a person enrolled on clean footage who meets a
degraded copy): robustness is then judged on reference footage too. Writes
``benchmarks/results/validation.json``, or ``validation_trial.json`` when another EXAM base model or
personalisation is tried (so the README keeps showing the shipped settings).
"""
from __future__ import annotations

import argparse
from dataclasses import dataclass, field

import numpy as np
import torch
from common import print_table, require_avdata, write_result

from exposeanyone.core.metrics import roc_auc
from exposeanyone.evaluation.manifest import read_manifest
from exposeanyone.evaluation.protocol import clip_loader
from exposeanyone.media.clip import ClipFeatures
from exposeanyone.media.corruptions import parse_corruption_spec

PIECE_FRAMES = 125
MIN_LAST_PIECE = 75
MOVES_NEAR = tuple(range(-3, 4))
MOVES_FAR = (-65, -50, -35, -25, 25, 35, 50, 65)
EXAM_MIN_REFERENCE_FRAMES = 500


@dataclass
class Piece:
    identity: str
    index: int
    clip: ClipFeatures
    start: int
    source: ClipFeatures = field(repr=False)


def pieces_of(identity: str, clip: ClipFeatures) -> list[Piece]:
    starts = list(range(0, clip.num_frames - PIECE_FRAMES + 1, PIECE_FRAMES))
    rest = clip.num_frames - (starts[-1] + PIECE_FRAMES if starts else 0)
    if rest >= MIN_LAST_PIECE and clip.num_frames >= PIECE_FRAMES:
        starts.append(clip.num_frames - PIECE_FRAMES)
    return [Piece(identity, i, clip.slice(s, s + PIECE_FRAMES), s, clip) for i, s in enumerate(starts)]


def dubbed(pieces: list[Piece]) -> list[ClipFeatures]:
    return [p.clip.with_audio_of(pieces[(i + 1) % len(pieces)].clip) for i, p in enumerate(pieces)]


# ------------------------------------------------------------------------------------------ FAU
def fau_raw(detector, clip: ClipFeatures) -> dict[int, np.ndarray]:
    """Per audio move (frames), the joint fake logits ``(windows,)`` of the usable 1-s windows."""
    from exposeanyone.detectors.fau.detector import AudioMoves
    from exposeanyone.detectors.windows import window_starts

    streams = detector.streams(clip)  # with the audio features the model hears
    starts = window_starts(clip.num_frames, detector.window_length, detector.stride)
    moves = AudioMoves(detector, streams, clip, starts[detector.usable(streams, starts)])
    wanted = sorted({far + near for far in MOVES_FAR for near in range(-2, 3)} | set(MOVES_NEAR))
    return {move: moves.logits(move) for move in wanted}


def _best_near(raw, centre: int, reach: int = 2) -> float:
    return min(np.mean(raw[centre + m]) for m in range(-reach, reach + 1))


def _reference(raw, far) -> np.ndarray:
    return np.mean([raw[m] for m in far], axis=0)


FAU_VARIANTS = {
    "before: own - mean(+-35,+-50)": lambda r: np.mean(r[0] - _reference(r, (-50, -35, 35, 50))),
    "own - mean(8 moves 25-65)": lambda r: np.mean(r[0] - _reference(r, MOVES_FAR)),
    "own - mean(+-25,+-35)": lambda r: np.mean(r[0] - _reference(r, (-35, -25, 25, 35))),
    "median windows, +-35,+-50": lambda r: np.median(r[0] - _reference(r, (-50, -35, 35, 50))),
    "min over +-1 of own, 8 moves": lambda r: min(np.mean(r[m] - _reference(r, MOVES_FAR)) for m in (-1, 0, 1)),
    "min over +-2 of own, 8 moves": lambda r: min(np.mean(r[m] - _reference(r, MOVES_FAR)) for m in range(-2, 3)),
    "min over +-3 of own, 8 moves": lambda r: min(np.mean(r[m] - _reference(r, MOVES_FAR)) for m in range(-3, 4)),
    "mean over +-1 of own, 8 moves": lambda r: np.mean([r[m] for m in (-1, 0, 1)]) - np.mean(_reference(r, MOVES_FAR)),
    "own - min over moves (8)": lambda r: np.mean(r[0]) - min(np.mean(r[m]) for m in MOVES_FAR),
    "raw own logit": lambda r: np.mean(r[0]),
    "best within +-2 of own - mean best within +-2 of 8 moves":
        lambda r: _best_near(r, 0) - np.mean([_best_near(r, m) for m in MOVES_FAR]),
    "best within +-2 of own - mean best within +-2 of +-35,+-50":
        lambda r: _best_near(r, 0) - np.mean([_best_near(r, m) for m in (-50, -35, 35, 50)]),
    "best within +-1 of own - mean best within +-1 of 8 moves":
        lambda r: _best_near(r, 0, 1) - np.mean([_best_near(r, m, 1) for m in MOVES_FAR]),
    "min over +-2 of own, +-35,+-50":
        lambda r: min(np.mean(r[m] - _reference(r, (-50, -35, 35, 50))) for m in range(-2, 3)),
}


# ------------------------------------------------------------------------------------------ EXAM
EXAM_TIMESTEPS = (400, 600, 700, 800, 900)
EXAM_MOVES = (0,) + MOVES_FAR
IDENTITY_CHANNELS = tuple(range(52))
POSE_CHANNELS = tuple(range(52, 58))


def exam_raw(detector, clip: ClipFeatures, tokens: torch.Tensor) -> dict:
    """Per-channel errors for each timestep of ``EXAM_TIMESTEPS``, with the detector's noise draws:
    ``{("person"|"null", move): (timesteps, windows, 58)}``; the null tokens only with the own audio."""
    from exposeanyone.detectors.audio_reference import shifted_audio
    from exposeanyone.detectors.exam.data import clip_arrays, sliding_windows
    from exposeanyone.detectors.exam.diffusion import reconstruction_errors

    usable = _usable_of(detector, clip)
    out = {}
    for move in EXAM_MOVES:
        moved = shifted_audio(clip, move) if move else clip
        windows = sliding_windows(clip_arrays(moved, detector.window, detector.model.config.audio_features), detector.window, detector.stride).select(usable)
        x0, mel, mask = (torch.from_numpy(a) for a in (windows.expressions, windows.audio, windows.frame_mask))
        for kind, adapter in (("person", tokens), ("null", None)) if move == 0 else (("person", tokens),):
            out[(kind, move)] = np.stack([
                reconstruction_errors(detector.model, detector.ddpm, x0, mel, adapter, mask, torch.tensor([t]),
                                      detector.noises).double().numpy() for t in EXAM_TIMESTEPS])
    return out


def _usable_of(detector, clip: ClipFeatures) -> np.ndarray:
    from exposeanyone.detectors.exam.data import clip_arrays, sliding_windows

    return sliding_windows(clip_arrays(clip, detector.window, detector.model.config.audio_features), detector.window, detector.stride).usable


def _error(raw, kind: str, move: int, timesteps, channels) -> np.ndarray:
    rows = [EXAM_TIMESTEPS.index(t) for t in timesteps]
    return raw[(kind, move)][rows][..., list(channels)].mean(axis=(0, 2))


def _exam_score(raw, identity_channels=IDENTITY_CHANNELS, identity_timesteps=(400, 600, 700),
                far=(-50, -35, 35, 50), identity_power=1.0, timing=True) -> float:
    from exposeanyone.media.track import SPEECH_CHANNELS

    window = 1.0
    if identity_channels:
        ratio = (_error(raw, "person", 0, identity_timesteps, identity_channels)
                 / _error(raw, "null", 0, identity_timesteps, identity_channels))
        window = ratio ** identity_power
    if timing:
        timing_timesteps = (600, 700, 800, 900)
        own = _error(raw, "person", 0, timing_timesteps, SPEECH_CHANNELS)
        window = window * own / np.mean([_error(raw, "person", m, timing_timesteps, SPEECH_CHANNELS) for m in far],
                                        axis=0)
    return float(np.mean(window))


ALL_CHANNELS = tuple(range(58))
EXAM_VARIANTS = {
    "before: identity on 58 channels at 600-900 x timing": lambda r: _exam_score(
        r, ALL_CHANNELS, (600, 700, 800, 900)),
    "identity on 52 blendshapes at 600-900 x timing": lambda r: _exam_score(r, identity_timesteps=(600, 700, 800, 900)),
    "identity on 58 channels at 400-700 x timing": lambda r: _exam_score(r, ALL_CHANNELS),
    "identity on 52 blendshapes at 400-700 x timing": lambda r: _exam_score(r),
    "identity on head pose at 400-700 x timing": lambda r: _exam_score(r, POSE_CHANNELS),
    "identity (blendshapes, 400-700) only": lambda r: _exam_score(r, timing=False),
    "timing only": lambda r: _exam_score(r, identity_channels=()),
    "identity squared x timing": lambda r: _exam_score(r, identity_power=2.0),
    "timing against 8 moves": lambda r: _exam_score(r, far=MOVES_FAR),
}


# Per-person normalisations of the shipped clip score against the person's calibration windows (the
# genuine window scores that enrollment's 2-fold cross-validation gives): what ranks people on one scale.
NORMALISATIONS = {
    "z against calibration windows": lambda s, g: (s - np.mean(g)) / np.std(g),
    "robust z (median, IQR)": lambda s, g: (s - np.median(g)) / (np.subtract(*np.percentile(g, [75, 25])) / 1.349),
    "minus calibration median": lambda s, g: s - np.median(g),
    "over calibration median": lambda s, g: s / np.median(g),
    "over threshold (95th percentile)": lambda s, g: s / np.percentile(g, 95),
}


# ------------------------------------------------------------------------------------------ protocol
def per_person_auc(genuine: dict[str, list[float]], fakes: dict[str, list[float]]) -> tuple[float, float]:
    aucs = [roc_auc(genuine[p], fakes[p]) for p in genuine if len(genuine[p]) and len(fakes[p])]
    pooled = roc_auc(sum(genuine.values(), []), sum(fakes.values(), []))
    return round(float(np.mean(aucs)), 4), round(float(pooled), 4)


def evaluate_variants(variants, raws_genuine, raws_fake, raws_impostor=None) -> list[list]:
    """A row per variant: dubbing AUC (mean per person, pooled), then identity swap's when impostors are given."""
    rows = []
    for name, fn in variants.items():
        genuine = {p: [fn(r) for r in rs] for p, rs in raws_genuine.items()}
        row = [name, *per_person_auc(genuine, {p: [fn(r) for r in rs] for p, rs in raws_fake.items()})]
        if raws_impostor is not None:
            row += per_person_auc(genuine, {p: [fn(r) for r in rs] for p, rs in raws_impostor.items()})
        rows.append(row)
    return rows


def run_fau(persons: dict[str, list[Piece]]) -> list[list]:
    from exposeanyone.pipeline import load_detector

    detector = load_detector("fau")
    genuine = {p: [fau_raw(detector, piece.clip) for piece in ps] for p, ps in persons.items()}
    fakes = {p: [fau_raw(detector, clip) for clip in dubbed(ps)] for p, ps in persons.items()}
    shipped = per_person_auc(
        {p: [detector.score(piece.clip, estimate_offset=False).score for piece in ps] for p, ps in persons.items()},
        {p: [detector.score(clip, estimate_offset=False).score for clip in dubbed(ps)] for p, ps in persons.items()})
    return [["FauDetector.score (as shipped)", *shipped]] + evaluate_variants(FAU_VARIANTS, genuine, fakes)


def run_exam(persons: dict[str, list[Piece]], detector,
             corrupted: dict[str, dict[str, list[Piece]]] | None = None,
             max_impostors: int | None = None) -> tuple[list[list], dict[str, list[list]]]:
    """Leave one piece out: the piece, its dubbed copy, and every other person's pieces (identity swap) are
    scored with tokens learnt on the rest of the person's reference; so are the piece and its dubbed copy
    under each corruption of ``corrupted`` (spec -> person -> pieces). Returns the clean table and a
    dubbing table per corruption. ``max_impostors``: score at most this many other persons' pieces, evenly
    spread (0: none, and no identity-swap columns; identity swap is easy for the wrong reasons on this corpus,
    so dubbing is what decides)."""
    from exposeanyone.calibration import cross_validated_scores
    from exposeanyone.detectors.base import PersonModel
    from exposeanyone.detectors.exam.personalize import personalize

    raws = {"genuine": {}, "dubbed": {}, "impostor": {}}
    shipped = {kind: {} for kind in raws}
    normalised = {name: {kind: {} for kind in raws} for name in NORMALISATIONS}
    corrupted = corrupted or {}
    raws_corrupted = {spec: {"genuine": {}, "dubbed": {}} for spec in corrupted}
    for person, pieces in persons.items():
        if pieces[0].source.num_frames < EXAM_MIN_REFERENCE_FRAMES:
            continue
        impostors = [other.clip for name, others in persons.items() if name != person for other in others]
        if max_impostors is not None and len(impostors) > max_impostors:
            impostors = [impostors[i] for i in np.linspace(0, len(impostors) - 1, max_impostors).astype(int)]
        degraded = {spec: (by_person[person], dubbed(by_person[person])) for spec, by_person in corrupted.items()}
        for index, (piece, fake) in enumerate(zip(pieces, dubbed(pieces))):
            source, start = piece.source, piece.start
            rest = [part for part in (source.slice(0, start), source.slice(start + PIECE_FRAMES, source.num_frames))
                    if part.num_frames >= detector.window]
            usable_s = sum(float(c.usable.sum()) / c.fps for c in rest)
            tokens = personalize(detector.model, rest, steps=detector.personalize_steps(usable_s),
                                 lr=detector.personalize_lr, seed=0)
            model = PersonModel(detector="exam", tensors={"adapter_tokens": tokens.numpy()},
                                info={"backbone": detector.backbone})
            calibration = cross_validated_scores(detector, rest)
            for kind, clips in (("genuine", [piece.clip]), ("dubbed", [fake]), ("impostor", impostors)):
                raws[kind].setdefault(person, []).extend(exam_raw(detector, clip, tokens) for clip in clips)
                scores = [detector.score(clip, model).score for clip in clips]
                shipped[kind].setdefault(person, []).extend(scores)
                for name, normalise in NORMALISATIONS.items():
                    normalised[name][kind].setdefault(person, []).extend(normalise(s, calibration) for s in scores)
            for spec, (genuine_pieces, dubbed_clips) in degraded.items():
                for kind, clip in (("genuine", genuine_pieces[index].clip), ("dubbed", dubbed_clips[index])):
                    raws_corrupted[spec][kind].setdefault(person, []).append(exam_raw(detector, clip, tokens))
            print(f"exam {person} piece {piece.index}", flush=True)
    with_impostors = max_impostors != 0

    def row(name: str, scores: dict) -> list:
        return [name, *per_person_auc(scores["genuine"], scores["dubbed"]),
                *(per_person_auc(scores["genuine"], scores["impostor"]) if with_impostors else ())]

    clean = [row("ExamDetector.score (as shipped)", shipped)] + [
        row(f"as shipped, {name}", scores) for name, scores in normalised.items()] + evaluate_variants(
        EXAM_VARIANTS, raws["genuine"], raws["dubbed"], raws["impostor"] if with_impostors else None)
    return clean, {spec: evaluate_variants(EXAM_VARIANTS, kinds["genuine"], kinds["dubbed"])
                   for spec, kinds in raws_corrupted.items()}


def reference_pieces(rows, load, corrupted: bool = False) -> dict[str, list[Piece]]:
    """The 5-s pieces of every person's genuine ``ref`` clips (persons with at least two pieces)."""
    persons: dict[str, list[Piece]] = {}
    for row in rows:
        if row.split == "ref" and row.label == "real":
            persons.setdefault(row.identity, []).extend(pieces_of(row.identity, load(row, corrupted)))
    return {p: ps for p, ps in persons.items() if len(ps) >= 2}


def exam_detector(args: argparse.Namespace):
    """The shipped EXAM detector, or the one the ``--exam-*`` options describe; no generated trajectories."""
    from exposeanyone.core.assets import exam_base_dir
    from exposeanyone.detectors.exam.detector import ExamDetector

    settings = {"generation_steps": 0}
    if args.exam_lr is not None:
        settings["personalize_lr"] = args.exam_lr
    if args.exam_steps_per_second is not None:
        settings["personalize_steps_per_second"] = args.exam_steps_per_second
    return ExamDetector.from_pretrained(args.exam_model or exam_base_dir(), **settings)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--avdata")
    parser.add_argument("--detectors", default="fau,exam")
    parser.add_argument("--exam-model", help="an EXAM base model folder to validate instead of the shipped one")
    parser.add_argument("--exam-lr", type=float, help="personalisation learning rate to try")
    parser.add_argument("--exam-steps-per-second", type=float, help="personalisation steps per second to try")
    parser.add_argument("--max-impostors", type=int, help="EXAM: score at most this many other persons' pieces "
                                                          "per left-out piece (0: no identity swap)")
    parser.add_argument("--corrupt", default="", help="comma-separated corruptions (e.g. video:3,noise:3) under "
                                                      "which EXAM's variants are also scored")
    args = parser.parse_args()
    rows = read_manifest(require_avdata(args.avdata) / "MANIFEST.tsv")
    persons = reference_pieces(rows, clip_loader())
    specs = [spec for spec in args.corrupt.split(",") if spec]
    results = {"pieces": {p: len(ps) for p, ps in persons.items()}}
    keys = ["mean_person_auc", "pooled_auc", "identity_swap_mean_person_auc", "identity_swap_pooled_auc"]
    headers = ["variant", "dubbing AUC (mean/person)", "dubbing AUC (pooled)", "identity swap (mean/person)",
               "identity swap (pooled)"]
    for name in args.detectors.split(","):
        if name == "fau":
            table = run_fau(persons)
        else:
            corrupted = {spec: reference_pieces(rows, clip_loader(parse_corruption_spec(spec)), corrupted=True) for spec in specs}
            table, corrupted_tables = run_exam(persons, exam_detector(args), corrupted, args.max_impostors)
            if corrupted_tables:
                results["exam_corrupted"] = {spec: {row[0]: dict(zip(keys, row[1:])) for row in spec_table}
                                             for spec, spec_table in corrupted_tables.items()}
                for spec, spec_table in corrupted_tables.items():
                    print(f"\nexam, {spec}:")
                    print_table(headers[:3], spec_table)
        results[name] = {row[0]: dict(zip(keys, row[1:])) for row in table}
        results[f"{name}_genuine_pieces"] = sum(n for p, n in results["pieces"].items()
                                                 if name == "fau" or persons[p][0].source.num_frames
                                                 >= EXAM_MIN_REFERENCE_FRAMES)
        print(f"\n{name}: {results['pieces']}")
        print_table(headers[:len(table[0])], table)
    trial = {key: value for key, value in (("exam_model", args.exam_model), ("exam_lr", args.exam_lr),
                                           ("exam_steps_per_second", args.exam_steps_per_second)) if value is not None}
    write_result("validation_trial" if trial else "validation", {**results, **trial})


if __name__ == "__main__":
    main()
