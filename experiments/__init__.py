"""The runners (``python -m experiments.<name>``) and what they share.

Imported before any runner module: the thread policy (:mod:`backends.threads`: passive OpenMP
waiting, the thread count from ``COLORIZE_THREADS``) is set here, before PyTorch loads.
"""

from backends import threads as _threads

_threads.configure()
