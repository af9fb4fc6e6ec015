import pytest

from speechssl2.registry import Registry, RegistryError


@pytest.fixture
def family():
    reg = Registry("test_family_" + str(id(object())))
    yield reg
    from speechssl2.registry import FAMILIES

    FAMILIES.pop(reg.family)


def test_build_passes_kwargs(family):
    @family.register("adder")
    class Adder:
        def __init__(self, a: int, b: float = 1.0) -> None:
            self.total = a + b

    assert family.build({"name": "adder", "a": 2, "b": 3}).total == 5
    assert family.build({"name": "adder", "a": 2}).total == 3


def test_unknown_key_lists_valid_keys(family):
    family.register("alpha")(dict)
    family.register("beta")(dict)
    with pytest.raises(RegistryError, match=r"unknown .* key 'gamma'; valid keys: alpha, beta"):
        family.get("gamma")


def test_duplicate_registration_raises(family):
    family.register("x")(int)
    with pytest.raises(RegistryError, match="already registered"):
        family.register("x")(float)


def test_unknown_argument_is_named(family):
    @family.register("c")
    class C:
        def __init__(self, dim: int) -> None:
            self.dim = dim

    with pytest.raises(RegistryError, match=r"unknown argument 'dimm'; valid arguments: dim"):
        family.build({"name": "c", "dimm": 3})
    with pytest.raises(RegistryError, match="missing required argument.*dim"):
        family.build({"name": "c"})


def test_wrong_type_is_named(family):
    @family.register("c")
    class C:
        def __init__(self, dim: int) -> None:
            self.dim = dim

    with pytest.raises(TypeError, match=r"c\.dim: expected int, got str"):
        family.build({"name": "c", "dim": "big"})


def test_missing_name(family):
    with pytest.raises(RegistryError, match="has no 'name'"):
        family.build({"dim": 3})


def test_bin_list_shows_every_family_with_its_keys(capsys):
    from speechssl2.bin import list as list_bin
    from speechssl2.registry import FAMILIES, load_components

    load_components()
    list_bin.main([])
    lines = dict(line.split(": ", 1) for line in capsys.readouterr().out.splitlines())
    for family in ("frontends", "encoders", "quantizers", "objectives", "heads", "losses", "tokenizers", "corpora"):
        assert FAMILIES[family].keys(), f"{family}: nothing registered"
        assert lines[family].split(", ") == FAMILIES[family].keys()
    with pytest.raises(SystemExit) as exit_info:
        list_bin.main(["no_such_family"])
    assert exit_info.value.code == 2  # argparse's usage error
    assert f"error: unknown family 'no_such_family'; valid: {', '.join(sorted(FAMILIES))}" in capsys.readouterr().err
