"""Every query of the store. Pages and pipeline stages call these; nobody else builds SQL.

Functions take ``session`` keyword-only (full-stack-fastapi-template's ``crud.py`` style). One
module per concern, all re-exported here, so callers write ``from db import queries`` and
``queries.list_studies(session=...)``:

- ``browse``: the studies list, one study, store health (Data page);
- ``ingest``: bulk key look-ups, batched inserts, ingest errors;
- ``extraction``: reports still to extract, per-report writes, the LLM cache;
- ``knowledge``: IKI sync reads and audit, reviewers' knowledge edits;
- ``review``: the review queue, decisions with optimistic locking, undo, agreement data;
- ``training``: settled labels per split, each study's training image, TrainingRun rows;
- ``evaluation``: a split's labelled studies and findings, training runs, stored evaluations.
"""

from db.queries.browse import *  # noqa: F403
from db.queries.evaluation import *  # noqa: F403
from db.queries.extraction import *  # noqa: F403
from db.queries.ingest import *  # noqa: F403
from db.queries.knowledge import *  # noqa: F403
from db.queries.review import *  # noqa: F403
from db.queries.training import *  # noqa: F403
