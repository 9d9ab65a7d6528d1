"""wordstats: a tiny text-statistics library. It contains no telemetry code at all."""

from .analysis import Analyzer, count_words, top_words

__all__ = ["Analyzer", "count_words", "top_words", "reading_time"]


def reading_time(text, words_per_minute=200):
    """Minutes needed to read ``text``."""
    return count_words(text) / words_per_minute
