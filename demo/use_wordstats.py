"""A user's program: it imports wordstats and uses some of its features. No telemetry code here."""

import random
import sys

import wordstats

rng = random.Random(sys.argv[1] if len(sys.argv) > 1 else 0)
text = "the quick brown fox jumps over the lazy dog. The dog sleeps."
for _ in range(rng.randint(1, 5)):
    wordstats.count_words(text)
if rng.random() < 0.7:
    print(wordstats.top_words(text))
if rng.random() < 0.5:
    print(wordstats.Analyzer.from_lines([text, text]).report())
if rng.random() < 0.3:
    print(round(wordstats.reading_time(text), 3))
