"""rag: bilingual extractive question answering with exact citations.

Stages, one module each: ingest → clean → segment/chunk → embed → store/build → retrieve → answer.
"""

__version__ = "0.1.0"
