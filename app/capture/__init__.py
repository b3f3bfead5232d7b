"""Body capture: which calls keep their request and response, redaction of what is kept, and
the stored-completions API that reads it back (docs/ledger.md, "Body capture").

`bodies.BodyCapture` decides and writes (through the ledger, so through its spool when the
database is down); `assembly.StreamAssembly` rebuilds a streamed completion; `stored` reads
and deletes a key's stored completions. May import `access`, `ledger` and the core modules.
"""

from .assembly import StreamAssembly
from .bodies import MAX_BODY_CHARS, BodyCapture

__all__ = ["MAX_BODY_CHARS", "BodyCapture", "StreamAssembly"]
