"""Training and evaluation commands: ``pretrain``, ``train-fau``, ``fit-ridge``, ``fit-whisper-ridge``, ``eval``."""
from __future__ import annotations

import json
from pathlib import Path

from ..core.config import avdata_dir
from ..core.errors import InputError
from .common import check_output, progress_printer, videos_in


def add_training_commands(commands) -> None:
    pretrain = commands.add_parser("pretrain", help="pre-train the EXAM base model on genuine talking clips")
    _add_data_source(pretrain)
    pretrain.add_argument("--out", required=True, help="output folder (save_pretrained layout + checkpoints)")
    pretrain.add_argument("--steps", type=int, default=4000)
    pretrain.add_argument("--batch-size", type=int, default=16)
    pretrain.add_argument("--seed", type=int, default=0)
    pretrain.add_argument("--identity-balance", type=float, default=None,
                          help="how often each person is drawn: 1 in proportion to their footage, 0 every person "
                               "equally (default 0.5, for a corpus dominated by one speaker; 1 suits a large one)")
    pretrain.add_argument("--audio-features", choices=["whisper-base", "log-mel"], default="whisper-base",
                          help="what the model hears: the frozen Whisper-base encoder's features (default) or log-mel")
    pretrain.add_argument("--time-budget", type=float, default=None, help="stop after this many seconds")
    pretrain.add_argument("--no-resume", action="store_true", help="start over even if checkpoints exist")
    _add_threads(pretrain)
    pretrain.set_defaults(handler=run_pretrain)

    train_fau = commands.add_parser("train-fau", help="train the FauForensics model (self-supervised pseudo-fakes)")
    _add_data_source(train_fau)
    train_fau.add_argument("--out", required=True)
    train_fau.add_argument("--steps", type=int, default=3000)
    train_fau.add_argument("--seed", type=int, default=0)
    train_fau.add_argument("--time-budget", type=float, default=None)
    train_fau.add_argument("--no-resume", action="store_true")
    train_fau.add_argument("--fakeavceleb", help="FakeAVCeleb root (with meta_data.csv) for supervised training")
    train_fau.add_argument("--lavdf", help="LAV-DF root (with metadata.json) for supervised training")
    train_fau.add_argument("--audio-features", choices=["whisper-base", "log-mel"], default="whisper-base",
                           help="what the model hears: the frozen Whisper-base encoder's features (default) or log-mel")
    _add_threads(train_fau)
    train_fau.set_defaults(handler=run_train_fau)

    ridge = commands.add_parser("fit-ridge", help="fit the generic ridge baseline on genuine talking clips")
    _add_data_source(ridge)
    ridge.add_argument("--out", required=True, help="output .safetensors file")
    ridge.set_defaults(handler=run_fit_ridge)

    whisper = commands.add_parser("fit-whisper-ridge",
                                  help="fit the generic Whisper-feature ridge baseline on genuine talking clips")
    _add_data_source(whisper)
    whisper.add_argument("--out", required=True, help="output .safetensors file")
    whisper.set_defaults(handler=run_fit_whisper_ridge)

    evaluation = commands.add_parser("eval", help="run the evaluation protocol on a manifest")
    evaluation.add_argument("--manifest", help="TSV manifest (default: the avdata corpus's MANIFEST.tsv)")
    evaluation.add_argument("--negatives", default="identity-swap,audio-swap")
    evaluation.add_argument("--corrupt", help="corrupt the scored test clips, e.g. 'blur:3'")
    evaluation.add_argument("--detector", default="exam", help="one or more, comma-separated: exam,fau,sync,ridge")
    evaluation.add_argument("--max-impostors", type=int, default=0,
                            help="at most this many identity-swap clips per person (0: all)")
    evaluation.add_argument("--json", required=True, metavar="OUT")
    evaluation.set_defaults(handler=run_eval)


def _add_threads(parser) -> None:
    parser.add_argument("--threads", type=int, default=None,
                        help="torch CPU threads (1 is fastest on a busy 2-core machine; default: torch's choice)")


def _set_threads(args) -> None:
    if getattr(args, "threads", None):
        import torch

        torch.set_num_threads(args.threads)


def _add_data_source(parser) -> None:
    source = parser.add_mutually_exclusive_group()
    source.add_argument("--manifest", help="TSV manifest: only its 'pretrain' rows are used (default: avdata's)")
    source.add_argument("--folder", help="a folder of genuine videos, one sub-folder per person")


def _manifest_path(value: str | None) -> Path:
    if value:
        return Path(value)
    root = avdata_dir()
    if root is None:
        raise InputError("No manifest given and no avdata corpus found: pass --manifest TSV or set EXPOSEANYONE_AVDATA.")
    return root / "MANIFEST.tsv"


def training_clips(args, progress=None):
    """Genuine training clips and their identities: a manifest's ``pretrain`` rows, or a folder tree."""
    from ..evaluation.manifest import read_manifest
    from ..media.extract import extract_clip

    if getattr(args, "folder", None):
        folder = Path(args.folder)
        if not folder.is_dir():
            raise InputError(f"'{folder}' is not a folder.")
        sources = [(path, path.parent.name) for path in videos_in(folder)]
    else:
        rows = read_manifest(_manifest_path(args.manifest))
        sources = [(r.path, r.identity) for r in rows if r.split == "pretrain" and r.is_real]
    if not sources:
        raise InputError("No training videos found (a manifest needs 'pretrain' rows labelled real).")
    clips, identities = [], []
    for i, (path, identity) in enumerate(sources):
        if progress:
            progress(i / len(sources), f"analysing {path.name}")
        clip = extract_clip(path, require_face=False)
        if clip.track.valid.any():
            clips.append(clip)
            identities.append(identity)
    return clips, identities, [str(p) for p, _ in sources]


def _printer(label: str):

    printer = progress_printer()
    return lambda f, m: printer(f, f"{label}: {m}")


def _fraction(value: float) -> float:
    if not 0.0 <= value <= 1.0:
        raise InputError(f"--identity-balance must be between 0 and 1, not {value}.")
    return value


def run_pretrain(args) -> int:
    from ..detectors.exam.pretrain import pretrain_exam

    balance = {} if args.identity_balance is None else {"identity_balance": _fraction(args.identity_balance)}
    _set_threads(args)
    clips, identities, _ = training_clips(args, _printer("data"))
    pretrain_exam(clips, identities, Path(args.out), steps=args.steps, batch_size=args.batch_size, seed=args.seed,
                  resume=not args.no_resume, time_budget_s=args.time_budget, progress=_printer("pretrain"),
                  model_config={"audio_features": args.audio_features}, **balance)
    print(f"\nEXAM base model written to {args.out} ({len(clips)} clips, {len(set(identities))} identities)")
    return 0


def run_train_fau(args) -> int:
    from ..detectors.fau.training import train_fau

    _set_threads(args)
    clips, identities, _ = training_clips(args, _printer("data"))
    supervised = _supervised_fau_clips(args)
    train_fau(clips, identities, Path(args.out), steps=args.steps, seed=args.seed, resume=not args.no_resume,
              time_budget_s=args.time_budget, progress=_printer("train-fau"), supervised=supervised,
              model_config={"audio_features": args.audio_features})
    print(f"\nFauForensics model written to {args.out} ({len(clips)} genuine clips, {len(supervised)} labelled)")
    return 0


def _supervised_fau_clips(args) -> list:
    from ..detectors.fau.datasets import read_fakeavceleb, read_lavdf
    from ..media.extract import extract_clip

    labelled = []
    if args.fakeavceleb:
        labelled += read_fakeavceleb(Path(args.fakeavceleb))
    if args.lavdf:
        labelled += read_lavdf(Path(args.lavdf), "train")
    return [(extract_clip(item.path, require_face=False), item) for item in labelled]


def run_fit_ridge(args) -> int:
    from ..detectors.baselines import RidgeRatioBaseline

    clips, identities, _ = training_clips(args, _printer("data"))
    RidgeRatioBaseline.fit_generic(clips).save(Path(args.out))
    print(f"\ngeneric ridge baseline written to {args.out} ({len(clips)} clips)")
    return 0


def run_fit_whisper_ridge(args) -> int:
    from ..detectors.whisper_ridge import WhisperRidgeBaseline

    out = check_output(args.out)
    clips, identities, _ = training_clips(args, _printer("data"))
    baseline = WhisperRidgeBaseline.fit(clips)
    baseline.info["identities"] = len(set(identities))
    baseline.save(out)
    print(f"\nWhisper ridge baseline written to {out} ({len(clips)} clips, {len(set(identities))} identities)")
    return 0


def run_eval(args) -> int:
    from ..core.storage import atomic_write_text
    from ..evaluation.manifest import read_manifest
    from ..evaluation.protocol import NEGATIVE_KINDS, clip_loader, evaluate
    from ..media.corruptions import parse_corruption_spec

    out = check_output(args.json)
    negatives = [n.strip() for n in args.negatives.split(",") if n.strip()]
    unknown = set(negatives) - set(NEGATIVE_KINDS)
    if unknown:
        raise InputError(f"Unknown negative kind(s) {', '.join(sorted(unknown))}; use {', '.join(NEGATIVE_KINDS)}.")
    corrupt = parse_corruption_spec(args.corrupt)
    rows = read_manifest(_manifest_path(args.manifest))
    load = clip_loader(corrupt)
    detectors = [d.strip() for d in args.detector.split(",") if d.strip()]
    results = {d: evaluate(rows, load, d, negatives, args.max_impostors, _printer(f"eval {d}")) for d in detectors}
    payload = {**results[detectors[0]], "corrupt": str(corrupt), "negatives": negatives, "detectors": results}
    atomic_write_text(out, json.dumps(payload, indent=2))
    print()
    for name, result in results.items():
        kinds = ", ".join(f"{k} {v['auc']}" for k, v in result["per_manipulation"].items())
        print(f"{name}: mean AUC {result['mean_auc']} ({kinds}); cross-session false alarms "
              f"{result['cross_session_false_alarms']['flagged']}/{result['cross_session_false_alarms']['n']}")
    return 0
