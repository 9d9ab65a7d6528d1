"""Instantiation attribution, engine-neutral: which __init__ counts, under which class, never raising."""

import gc

from telly_autoinst.engines._base import Instantiations


class Base:
    def __init__(self):
        pass


class Sub(Base):
    pass


class OwnInit(Base):
    def __init__(self):
        super().__init__()


def _token_of(value):
    return value if value in (Base.__init__, OwnInit.__init__) else None


def test_first_package_init_counts_under_nearest_counted_class():
    seen = Instantiations(_token_of)
    base_tick, sub_tick, own_tick = object(), object(), object()
    seen.add(Base, base_tick)
    seen.add(Sub, sub_tick)
    seen.add(OwnInit, own_tick)
    assert seen.resolve(Base) == (Base.__init__, base_tick)
    assert seen.resolve(Sub) == (Base.__init__, sub_tick)  # inherited initializer, own key
    assert seen.resolve(OwnInit) == (OwnInit.__init__, own_tick)  # Base.__init__ via super() does not count
    assert seen.cached(Sub) == (Base.__init__, sub_tick)


def test_foreign_subclasses_count_as_their_nearest_counted_base_and_stay_collectable():
    seen = Instantiations(_token_of)
    tick = object()
    seen.add(Base, tick)
    foreign = type("Foreign", (Sub,), {})
    assert seen.resolve(foreign) == (Base.__init__, tick)
    assert seen.cached(foreign) is None  # cached weakly, not among the package's classes
    del foreign
    gc.collect()
    assert len(seen._others) == 0


def test_adding_a_class_forgets_earlier_resolutions():
    seen = Instantiations(_token_of)
    base_tick, sub_tick = object(), object()
    seen.add(Base, base_tick)
    assert seen.resolve(Sub) == (Base.__init__, base_tick)
    seen.add(Sub, sub_tick)
    assert seen.resolve(Sub) == (Base.__init__, sub_tick)


def test_nothing_counted_and_errors_resolve_to_nothing():
    seen = Instantiations(_token_of)
    assert seen.resolve(Base) == (None, None)
    seen.add(Base, object())

    def broken(value):
        raise RuntimeError("token lookup failed")

    failing = Instantiations(broken)
    failing.add(Base, object())
    assert failing.resolve(Base) == (None, None)
    assert failing.resolve(type(None)) == (None, None)
