"""User-facing errors.

Every problem a user can cause (a bad file, a missing profile, a clip with no face) is raised as an
:class:`InputError` whose message is one readable sentence saying what is wrong and what to do. The CLI
turns it into exit code 2 and the app shows it as is; anything else is a bug and keeps its traceback.
"""
from __future__ import annotations


class InputError(ValueError):
    """A problem with what the user gave us, explained in one sentence."""


class MediaError(InputError):
    """The file cannot be decoded as a talking-face video."""


class NoFaceError(InputError):
    """No usable face was found in the video."""


class ProfileError(InputError):
    """A person profile is missing, invalid or tampered with."""


class LimitError(InputError):
    """The input exceeds a configured limit (size, duration, number of clips)."""
