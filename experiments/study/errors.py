"""Named errors of the study API: every bad argument raises one of these with a one-line reason.

All derive from :class:`StudyError`; each also derives from the built-in exception a caller
would expect (``ValueError`` for a bad value, ``LookupError`` for an unknown name), so
``except ValueError`` keeps working.
"""

from __future__ import annotations


class StudyError(Exception):
    """Base class: a study call refused its arguments or the study's state."""


class InvalidDesign(StudyError, ValueError):
    """A study design field has the wrong type or is out of range."""


class InvalidArgument(StudyError, ValueError):
    """An argument of a storage call has the wrong type or is out of range."""


class InvalidVote(InvalidArgument):
    """A vote's choice, response time or trial does not fit the participant's plan."""


class StudyExists(StudyError, ValueError):
    """A study of that name exists already."""


class UnknownStudy(StudyError, LookupError):
    """No study of that name."""


class UnknownParticipant(StudyError, LookupError):
    """No participant with that id (in that study)."""


class StudyNotOpen(StudyError):
    """The study is not open: nobody can join, and votes are refused."""


class NotEnoughPhotos(StudyError, ValueError):
    """Fewer (prepared) photos than one participant's trials need without repeating a photo."""


class MissingImage(StudyError, LookupError):
    """A trial's image has not been prepared."""


class StudyLocked(StudyError):
    """Participants have started: the photo set (and so every plan) can no longer change."""
