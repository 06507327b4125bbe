"""UserError, and the one-line account of an error the user can act on (what ``tsdfm`` prints instead of a traceback).

An error is one the user can act on when it is a :class:`UserError`, a Lightning ``MisconfigurationException``, or a
``ValueError``, ``FileNotFoundError`` or ``ImportError`` that lightning-tsdfm or one of its plugins raised on purpose
(their messages say what was wrong and how to fix it). Any other error is a bug and keeps its traceback. Errors that
reach the user wrapped by another library (jsonargparse reports a class that failed to instantiate as a long
``Union`` dump) are found through their ``__cause__`` / ``__context__`` chain.
"""

from __future__ import annotations

from types import TracebackType

from lightning.fabric.utilities.exceptions import MisconfigurationException

#: modules whose ValueError / FileNotFoundError / ImportError messages are written for the user
_OWN_PACKAGES = ("lightning_tsdfm", "tsdfm_")
_OWN_TYPES = (ValueError, FileNotFoundError, ImportError)


class UserError(ValueError):
    """A mistake in what the user gave (a file, an option, a value); the message says what was wrong and how to fix it."""


def user_message(error: BaseException) -> str | None:
    """The one-line message of ``error`` (or of the error it wraps) when the user can act on it, else None."""
    for cause in _chain(error):
        if isinstance(cause, (UserError, MisconfigurationException)) or (
            isinstance(cause, _OWN_TYPES) and _raised_by_own_code(cause.__traceback__)
        ):
            owner = _constructing(cause.__traceback__)
            message = " ".join(str(cause).split()) or type(cause).__name__
            return f"{owner}: {message}" if owner and not message.startswith(owner) else message
    return None


def _chain(error: BaseException) -> list[BaseException]:
    """``error``, then the error it was raised from (or during), and so on: outermost first."""
    seen: list[BaseException] = []
    while error is not None and error not in seen:
        seen.append(error)
        error = error.__cause__ or error.__context__
    return seen


def _frames(tb: TracebackType | None):
    while tb is not None:
        yield tb.tb_frame
        tb = tb.tb_next


def _is_own(frame) -> bool:
    return str(frame.f_globals.get("__name__", "")).startswith(_OWN_PACKAGES)


def _raised_by_own_code(tb: TracebackType | None) -> bool:
    frames = list(_frames(tb))
    return bool(frames) and _is_own(frames[-1])


def _constructing(tb: TracebackType | None) -> str | None:
    """The lightning-tsdfm class being built where the error was raised: the outermost ``__init__`` of the last
    unbroken run of lightning-tsdfm frames (``TrajectoryShaper`` when the selection policy it builds refuses a
    value; not the CLI, whose frames are separated from the error by Lightning's and jsonargparse's), if any."""
    owner = None
    for frame in _frames(tb):
        if not _is_own(frame):
            owner = None
        elif owner is None and frame.f_code.co_name == "__init__" and "self" in frame.f_locals:
            owner = type(frame.f_locals["self"]).__name__
    return owner
