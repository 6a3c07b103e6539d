"""Model backends (L2) behind one async Protocol; see ``base.py``. Build one with ``make_backend``."""

from judgelab.backends.base import Backend, TokenDistributionBackend
from judgelab.backends.factory import make_backend

__all__ = ["Backend", "TokenDistributionBackend", "make_backend"]
