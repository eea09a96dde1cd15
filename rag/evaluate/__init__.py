"""Measuring the answers: labelled questions (`labelled`) and SQuAD-format benchmarks (`squad`)."""

from .labelled import Outcome, evaluate, format_report, is_faithful, judge, load_questions, summarize

__all__ = ["Outcome", "evaluate", "format_report", "is_faithful", "judge", "load_questions", "summarize"]
