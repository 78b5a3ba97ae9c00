"""Every query of the store. Pages and pipeline stages call these; nobody else builds SQL.

Functions take ``session`` keyword-only (full-stack-fastapi-template's ``crud.py`` style). One
module per concern, all re-exported here, so callers write ``from db import queries`` and
``queries.list_studies(session=...)``. Each module lists its exports in ``__all__``; helpers
two modules share live in ``_common`` (private to the package):

- ``browse``: the studies list, one study, store health (Data page);
- ``ingest``: bulk key look-ups, batched inserts, ingest errors;
- ``extraction``: reports still to extract, per-report writes, the LLM cache;
- ``knowledge``: IKI sync reads and audit, reviewers' knowledge edits;
- ``auth``: the signed-in principal (``Actor``) and the role check of every write;
- ``accounts``: local and OIDC accounts, roles, disabling (audited);
- ``assignment``: who reviews which report (single or blind double review), progress;
- ``answers``: each reviewer's own answers (blind), undo;
- ``settle``: settlement, adjudication, and the settled labels training and export read;
- ``review``: the review queue, decisions with optimistic locking, undo, agreement data;
- ``training``: settled labels per split, each study's training image, TrainingRun rows;
- ``evaluation``: a split's labelled studies and findings, training runs, stored evaluations;
- ``index``: EmbeddingIndex rows, the studies an index embeds, study cards for result lists.
"""

from db.queries import (
    accounts,
    answers,
    assignment,
    auth,
    browse,
    evaluation,
    extraction,
    index,
    ingest,
    knowledge,
    review,
    settle,
    training,
)
from db.queries.accounts import *  # noqa: F403
from db.queries.answers import *  # noqa: F403
from db.queries.assignment import *  # noqa: F403
from db.queries.auth import *  # noqa: F403
from db.queries.browse import *  # noqa: F403
from db.queries.evaluation import *  # noqa: F403
from db.queries.extraction import *  # noqa: F403
from db.queries.index import *  # noqa: F403
from db.queries.ingest import *  # noqa: F403
from db.queries.knowledge import *  # noqa: F403
from db.queries.review import *  # noqa: F403
from db.queries.settle import *  # noqa: F403
from db.queries.training import *  # noqa: F403

# exactly the modules' exports (tests/db/test_queries_api.py), not the submodules' names
__all__ = [*accounts.__all__, *answers.__all__, *assignment.__all__, *auth.__all__,
           *browse.__all__, *evaluation.__all__, *extraction.__all__, *index.__all__,
           *ingest.__all__, *knowledge.__all__, *review.__all__, *settle.__all__,
           *training.__all__]
