"""Design validation on reference footage only: where scoring choices are made, never on test clips.

    python benchmarks/validation.py [--avdata DIR] [--detectors fau,exam]

The persons of interest's ``ref`` clips are cut into 5-s pieces (the length of the test clips; a short
clip also gets a last piece flush with its end). Genuine: each piece. Dubbing: each piece with the audio
of the person's next piece. FauForensics never saw these clips (it is trained on ``pretrain`` rows);
EXAM scores each piece with tokens learnt on the rest of that person's reference (leave one piece out;
only persons with at least 20 s of reference, since the rest must hold 4-s windows). Each clip's raw
quantities (fake logits or reconstruction errors under many audio moves and noise draws) are computed
once; every scoring variant in ``FAU_VARIANTS`` / ``EXAM_VARIANTS`` is arithmetic on them, and the table
gives each one's dubbing AUC (mean over persons and pooled). About 22 genuine pieces: differences of a
few points are noise. Writes ``benchmarks/results/validation.json``.
"""
from __future__ import annotations

import argparse
from dataclasses import dataclass, field

import numpy as np
import torch

from common import print_table, require_avdata, write_result
from exposeanyone.clip import ClipFeatures
from exposeanyone.evaluation import clip_loader
from exposeanyone.manifest import read_manifest
from exposeanyone.metrics import roc_auc

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
    from exposeanyone.detectors.base import window_starts
    from exposeanyone.detectors.fau import AudioMoves
    from exposeanyone.pseudo_fakes import clip_streams

    streams = clip_streams(clip)
    starts = window_starts(clip.num_frames, detector.window_length, detector.stride)
    moves = AudioMoves(detector, streams, clip, starts[detector._usable(streams.valid, streams.speech, starts)])
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
EXAM_NOISES = 8


def exam_raw(detector, clip: ClipFeatures, tokens: torch.Tensor) -> dict:
    """Per audio move, per-channel errors with the person's and the null tokens for each noise draw:
    ``{"person"|"null": {move: (draws, windows, 58)}}``."""
    from exposeanyone.audio_reference import shifted_audio
    from exposeanyone.diffusion import reconstruction_errors
    from exposeanyone.windows import clip_arrays, sliding_windows

    noises = torch.randn((EXAM_NOISES, detector.window, 58), generator=torch.Generator().manual_seed(0))
    out = {"person": {}, "null": {}}
    usable = _usable_of(detector, clip)
    for move in MOVES_NEAR + MOVES_FAR:
        moved = shifted_audio(clip, move) if move else clip
        windows = sliding_windows(clip_arrays(moved, detector.window), detector.window, detector.stride).select(usable)
        for kind, adapter in (("person", tokens), ("null", None)) if move == 0 else (("person", tokens),):
            x0 = torch.from_numpy(windows.expressions)
            per_draw = [reconstruction_errors(detector.model, detector.ddpm, x0, torch.from_numpy(windows.mel), adapter,
                                              torch.from_numpy(windows.frame_mask), detector.timesteps,
                                              noises[d:d + 1]).double().numpy() for d in range(EXAM_NOISES)]
            out[kind][move] = np.stack(per_draw)
    return out


def _usable_of(detector, clip: ClipFeatures) -> np.ndarray:
    from exposeanyone.windows import clip_arrays, sliding_windows

    return sliding_windows(clip_arrays(clip, detector.window), detector.window, detector.stride).usable


def _exam_score(raw, draws, far, channels="speech", identity=True, own_tolerance=0) -> float:
    from exposeanyone.track import SPEECH_CHANNELS

    pick = list(SPEECH_CHANNELS) if channels == "speech" else slice(None)
    person = {m: raw["person"][m][:draws] for m in raw["person"]}
    own = min((person[m][..., pick].mean(axis=(0, 2)) for m in range(-own_tolerance, own_tolerance + 1)),
              key=np.mean)
    timing = own / np.mean([person[m][..., pick].mean(axis=(0, 2)) for m in far], axis=0)
    window = timing
    if identity:
        window = window * person[0].mean(axis=(0, 2)) / raw["null"][0][:draws].mean(axis=(0, 2))
    return float(np.mean(window))


EXAM_VARIANTS = {
    "2 noises x identity x timing(+-35,+-50)": lambda r: _exam_score(r, 2, (-50, -35, 35, 50)),
    "4 noises": lambda r: _exam_score(r, 4, (-50, -35, 35, 50)),
    "8 noises": lambda r: _exam_score(r, 8, (-50, -35, 35, 50)),
    "2 noises, 8 moves": lambda r: _exam_score(r, 2, MOVES_FAR),
    "4 noises, 8 moves": lambda r: _exam_score(r, 4, MOVES_FAR),
    "own at best of +-2, 4 moves": lambda r: _exam_score(r, 2, (-50, -35, 35, 50), own_tolerance=2),
    "own at best of +-1, 4 moves": lambda r: _exam_score(r, 2, (-50, -35, 35, 50), own_tolerance=1),
    "timing only": lambda r: _exam_score(r, 2, (-50, -35, 35, 50), identity=False),
    "timing all channels": lambda r: _exam_score(r, 2, (-50, -35, 35, 50), channels="all"),
}


# ------------------------------------------------------------------------------------------ protocol
def per_person_auc(genuine: dict[str, list[float]], fakes: dict[str, list[float]]) -> tuple[float, float]:
    aucs = [roc_auc(genuine[p], fakes[p]) for p in genuine if len(genuine[p]) and len(fakes[p])]
    pooled = roc_auc(sum(genuine.values(), []), sum(fakes.values(), []))
    return round(float(np.mean(aucs)), 4), round(float(pooled), 4)


def evaluate_variants(variants, raws_genuine, raws_fake) -> list[list]:
    rows = []
    for name, fn in variants.items():
        genuine = {p: [fn(r) for r in rs] for p, rs in raws_genuine.items()}
        fakes = {p: [fn(r) for r in rs] for p, rs in raws_fake.items()}
        rows.append([name, *per_person_auc(genuine, fakes)])
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


def run_exam(persons: dict[str, list[Piece]], model_dir: str | None = None) -> list[list]:
    from exposeanyone.detectors.base import PersonModel
    from exposeanyone.exam_training import personalize
    from exposeanyone.pipeline import load_detector, without_trajectories

    if model_dir:
        from exposeanyone.detectors.exam import ExamDetector

        detector = ExamDetector.from_pretrained(model_dir, generation_steps=0)
    else:
        detector = without_trajectories(load_detector("exam"))
    genuine, fakes, shipped_genuine, shipped_fakes = {}, {}, {}, {}
    for person, pieces in persons.items():
        if pieces[0].source.num_frames < EXAM_MIN_REFERENCE_FRAMES:
            continue
        genuine[person], fakes[person] = [], []
        for piece, fake in zip(pieces, dubbed(pieces)):
            source, start = piece.source, piece.start
            rest = [part for part in (source.slice(0, start), source.slice(start + PIECE_FRAMES, source.num_frames))
                    if part.num_frames >= detector.window]
            usable_s = sum(float(c.usable.sum()) / c.fps for c in rest)
            tokens = personalize(detector.model, rest, steps=detector.personalize_steps(usable_s),
                                 lr=detector.personalize_lr, seed=0)
            genuine[person].append(exam_raw(detector, piece.clip, tokens))
            fakes[person].append(exam_raw(detector, fake, tokens))
            model = PersonModel(detector="exam", tensors={"adapter_tokens": tokens.numpy()},
                                info={"backbone": detector.backbone})
            shipped_genuine.setdefault(person, []).append(detector.score(piece.clip, model).score)
            shipped_fakes.setdefault(person, []).append(detector.score(fake, model).score)
            print(f"exam {person} piece {piece.index}", flush=True)
    shipped = per_person_auc(shipped_genuine, shipped_fakes)
    return [["ExamDetector.score (as shipped)", *shipped]] + evaluate_variants(EXAM_VARIANTS, genuine, fakes)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--avdata")
    parser.add_argument("--detectors", default="fau,exam")
    parser.add_argument("--exam-model", help="an EXAM base model folder to validate instead of the shipped one")
    args = parser.parse_args()
    rows = read_manifest(require_avdata(args.avdata) / "MANIFEST.tsv")
    load = clip_loader()
    persons: dict[str, list[Piece]] = {}
    for row in rows:
        if row.split == "ref" and row.label == "real":
            persons.setdefault(row.identity, []).extend(pieces_of(row.identity, load(row, False)))
    persons = {p: ps for p, ps in persons.items() if len(ps) >= 2}
    results = {"pieces": {p: len(ps) for p, ps in persons.items()}}
    headers = ["variant", "dubbing AUC (mean/person)", "dubbing AUC (pooled)"]
    for name in args.detectors.split(","):
        table = run_fau(persons) if name == "fau" else run_exam(persons, args.exam_model)
        results[name] = {row[0]: {"mean_person_auc": row[1], "pooled_auc": row[2]} for row in table}
        results[f"{name}_genuine_pieces"] = sum(n for p, n in results["pieces"].items()
                                                 if name == "fau" or persons[p][0].source.num_frames
                                                 >= EXAM_MIN_REFERENCE_FRAMES)
        print(f"\n{name}: {results['pieces']}")
        print_table(headers, table)
    if args.exam_model:
        results["exam_model"] = args.exam_model
    write_result("validation", results)


if __name__ == "__main__":
    main()
