"""Counting words."""

import collections


def count_words(text):
    return len(text.split())


def top_words(text, n=3):
    return collections.Counter(w.lower().strip(".,!?") for w in text.split()).most_common(n)


class Analyzer:
    def __init__(self):
        self.texts = []

    def add(self, text):
        self.texts.append(text)
        return self

    def report(self):
        joined = " ".join(self.texts)
        return {"words": count_words(joined), "top": top_words(joined)}

    @classmethod
    def from_lines(cls, lines):
        analyzer = cls()
        for line in lines:
            analyzer.add(line)
        return analyzer
