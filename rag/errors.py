"""Domain errors. The CLI and the UI turn these into one sentence for a person."""

from __future__ import annotations


class RagError(Exception):
    """Base class: every error the library raises on purpose."""


class ConfigError(RagError, ValueError):
    """A setting (argument or RAG_* variable) has a value that cannot work."""


class ModelError(RagError):
    """The embedding model cannot be materialized or loaded."""


class IngestError(RagError):
    """A document cannot be read; the message says which file and why."""


class IndexStoreError(RagError):
    """The index on disk is missing, corrupt, or built for other settings."""


class QuestionError(RagError, ValueError):
    """The question cannot be answered as asked (empty, too long...).

    `key` and `params` let the answer stage word the refusal in the question's language.
    """

    def __init__(self, message: str, key: str = "", **params: object) -> None:
        super().__init__(message)
        self.key = key
        self.params = params
