"""The Milvus store: the same index in Milvus collections, served through one alias.

`RAG_MILVUS_URI` chooses the deployment through one client code path (`pymilvus`):
a file path is an embedded milvus-lite database; `http://…` or `https://…` is a
milvus-lite server, a Milvus standalone or a cluster (`RAG_MILVUS_TOKEN` when it
asks for one).

One index version is five collections named `{prefix}_v{stamp}_{part}`:

    meta       the manifest and each document (JSON), and any text too long for a
               VARCHAR field, cut into parts of at most PART_CHARS characters
    passages   id, doc_id, source, title, year, language, section, offsets, position,
               kind, text, first sentence and count, dense vector, sparse lexical vector
    sentences  id, doc_id, source, title, year, language, section, passage_id, offsets,
               text, dense vector, sparse lexical vector
    clauses    id, sentence_id, passage_id, doc_id, dense vector
    terms      one row per analyzed term: its sparse dimension in each lexical space, how
               many sentences and passages hold it, and which documents (for names)

The sparse vectors are the rows of the project's own BM25 matrices (`lexical.py`,
French/English stemming, elisions, accents), so lexical ranking is the same on
every store: a query's sparse vector puts 1.0 on each of its terms, and the inner
product is the BM25 total. The alias `{prefix}` names the meta collection of the
version being served; a reader resolves the other four from it, so it never reads
two versions at once. A build writes a whole new version, then moves the alias;
the version before stays for readers still on it, older ones are dropped.
"""

from .connection import Connection, connect, describe_failure, new_version, version_time
from .read import MilvusIndex, MilvusTermScores, open_served
from .write import dense_index, drop_old_versions, serve, write_version

__all__ = ["Connection", "MilvusIndex", "MilvusTermScores", "connect", "dense_index", "describe_failure",
           "drop_old_versions", "new_version", "open_served", "serve", "version_time", "write_version"]
