"""Cut the app's example clips from the GRID rows of avdata (the rule is in examples/NOTICE.md) and write
``examples/examples.json``, the list the app and the tests read.

    .venv/bin/python scripts/make_examples.py [--avdata DIR] [--force]

Then make the ready person's profile from the two reference clips with the project's own command:

    exposeanyone enroll --name "GRID speaker s1" --profiles examples/profiles --detectors exam,ridge \\
        --replace examples/grid_s1_reference_1.mp4 examples/grid_s1_reference_2.mp4

Existing clips are kept unless ``--force``: re-encoding changes their bytes, and with them the hashes the
shipped profile records.
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

import imageio_ffmpeg

REPO = Path(__file__).resolve().parent.parent
OUT_DIR = REPO / "examples"
SEGMENT = "clips/grid_s1/pretrain_grid_s1_seg{:02d}_000.mp4"
REFERENCE_S = 30.0
CHECK_S = 10.0
DELAY_S = 0.5
ENCODE = ["-c:v", "libx264", "-crf", "23", "-preset", "medium", "-pix_fmt", "yuv420p", "-c:a", "aac", "-b:a", "96k",
          "-ar", "44100", "-ac", "1", "-map_metadata", "-1", "-fflags", "+bitexact"]


def ffmpeg(*args: str) -> None:
    subprocess.run([imageio_ffmpeg.get_ffmpeg_exe(), "-v", "error", "-y", *args], check=True)


PERSON = "GRID speaker s1"
CHECKS = [
    {"file": "grid_s1_genuine.mp4", "truth": "real", "label": "genuine: other sentences of the same speaker"},
    {"file": "grid_s1_dubbed.mp4", "truth": "fake", "label": "fake: the same face dubbed with other speech of theirs"},
    {"file": "grid_s1_audio_late.mp4", "truth": "fake", "label": "fake: the same clip with its sound 0.5 s late"},
]
"""The clips to check, what each truly is, and its label in the app."""


def listing() -> dict:
    """``examples.json``: the ready person, where its profile is, its references and the clips to check."""
    return {"about": "Example clips of GRID speaker 1 (CC BY 4.0); see NOTICE.md.", "person": PERSON,
            "profiles": "profiles", "references": ["grid_s1_reference_1.mp4", "grid_s1_reference_2.mp4"],
            "checks": CHECKS}


def examples(avdata: Path) -> dict[str, list[str]]:
    """The ffmpeg arguments of each example, by file name (the rule of examples/NOTICE.md)."""
    def segment(index: int) -> str:
        return str(avdata / SEGMENT.format(index))

    check = ["-t", f"{CHECK_S:g}", "-i", segment(37)]
    return {
        "grid_s1_reference_1.mp4": ["-t", f"{REFERENCE_S:g}", "-i", segment(0)],
        "grid_s1_reference_2.mp4": ["-t", f"{REFERENCE_S:g}", "-i", segment(1)],
        "grid_s1_genuine.mp4": check,
        "grid_s1_dubbed.mp4": [*check, "-t", f"{CHECK_S:g}", "-i", segment(36), "-map", "0:v", "-map", "1:a"],
        "grid_s1_audio_late.mp4": [*check, "-af", f"adelay={int(DELAY_S * 1000)}:all=1", "-t", f"{CHECK_S:g}"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--avdata", default=str(REPO.parent / "shared" / "avdata"))
    parser.add_argument("--force", action="store_true", help="cut again clips that exist")
    args = parser.parse_args()
    avdata = Path(args.avdata)
    if not (avdata / SEGMENT.format(0)).is_file():
        sys.exit(f"No GRID speaker s1 footage under {avdata}; pass --avdata DIR.")
    OUT_DIR.mkdir(exist_ok=True)
    for name, arguments in examples(avdata).items():
        out = OUT_DIR / name
        if out.is_file() and not args.force:
            continue
        ffmpeg(*arguments, *ENCODE, str(out))
        print(f"wrote {out.relative_to(REPO)}")
    (OUT_DIR / "examples.json").write_text(json.dumps(listing(), indent=2) + "\n")


if __name__ == "__main__":
    main()
