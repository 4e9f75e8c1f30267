"""One grammar for every verb (issue 20 §2): a study folder read is positional, --out is only written."""

import argparse
import json
import re
import subprocess
import sys

import pytest

from flimexplore.cli._grammar import RULE
from flimexplore.cli.main import COMMANDS, _parser, main

READS_A_STUDY = {"analyse", "export"}


def verbs():
    """Each subcommand's parser, by name, as ``flimexplore --help`` builds them."""
    top = _parser()
    (sub,) = (a for a in top._actions if isinstance(a, argparse._SubParsersAction))
    return top, sub.choices


def one_line(text):
    return " ".join(text.split())


def test_every_verb_is_walked():
    _, choices = verbs()
    assert tuple(choices) == COMMANDS


@pytest.mark.parametrize("name", COMMANDS)
def test_out_is_only_where_a_verb_writes(name):
    _, choices = verbs()
    s = choices[name]
    outs = [a for a in s._actions if "--out" in a.option_strings]
    if name == "datasets":  # prints a list, writes nothing
        assert outs == []
        return
    (out,) = outs
    assert out.option_strings == ["--out"] and out.required and out.metavar == "DIR"
    assert out.help.startswith("output folder: ") and "are written there (created if missing" in out.help
    assert not re.search(r"\b(read|reads|input)\b", out.help) and "study folder to read" not in out.help


@pytest.mark.parametrize("name", COMMANDS)
def test_a_study_folder_read_is_the_positional_study_dir(name):
    _, choices = verbs()
    s = choices[name]
    positionals = [a for a in s._actions if not a.option_strings]
    assert [a.metavar for a in positionals] == (["STUDY_DIR"] if name in READS_A_STUDY else [])
    for a in positionals:
        assert a.help.startswith("study folder to read") and a.nargs is None  # required, exactly one
    for a in s._actions:  # no flag names a study folder to read
        if a.option_strings and a.help:
            assert a.metavar != "STUDY_DIR" and "study folder to read" not in a.help


@pytest.mark.parametrize("name", COMMANDS)
def test_each_verb_help_reads_the_same_way(name):
    _, choices = verbs()
    s = choices[name]
    text = s.format_help()
    assert "%%" not in text and "%(" not in text
    assert "--out OUT" not in text
    for a in s._actions:
        if a.option_strings and a.help and a.default not in (None, False, argparse.SUPPRESS):
            assert "(default: " in a.help, (name, a.option_strings)  # every default is stated one way
        if "--dataset" in a.option_strings:
            assert a.metavar == "NAME|DIR"
    if s.usage is not None:  # a hand-written usage (STUDY_DIR first) names every option
        usage = s.format_usage()
        assert usage.split()[3:5] == ["[-h]", "STUDY_DIR"]
        for a in s._actions:
            if a.option_strings and a.help is not argparse.SUPPRESS and "-h" not in a.option_strings:
                assert a.option_strings[0] in usage, (name, a.option_strings)


def test_top_level_help_states_the_rule(capsys):
    with pytest.raises(SystemExit) as info:
        main(["--help"])
    assert info.value.code == 0
    out = one_line(capsys.readouterr().out)
    assert one_line(RULE) in out
    assert "--out DIR" in RULE and "positional STUDY_DIR" in RULE


def run_cli(argv, capsys):
    """Exit status and stderr of ``flimexplore argv`` run in this process."""
    try:
        code = main(argv)
    except SystemExit as exit_:  # argparse's usage errors exit from inside main
        code = exit_.code
    return code, capsys.readouterr().err


def fake_study(folder):
    folder.mkdir()
    (folder / "config.json").write_text(json.dumps({"config": {}}))
    return str(folder)


@pytest.mark.parametrize(
    "case, match",
    [
        ("both_studies", "both "),
        ("old_without_dest", "the following arguments are required: STUDY_DIR"),
        ("new_without_out", "the following arguments are required: --out"),
        ("two_positionals", "unrecognized arguments"),
        ("no_study", "is not a flimexplore study folder"),
    ],
)
def test_wrong_mixes_end_with_one_line_and_status_2(case, match, tmp_path, capsys):
    a, b, new = fake_study(tmp_path / "a"), fake_study(tmp_path / "b"), str(tmp_path / "new")
    argv = {
        "both_studies": ["export", a, "--model", "0", "--out", b],
        "old_without_dest": ["export", "--out", a, "--model", "0"],
        "new_without_out": ["export", a, "--model", "0"],
        "two_positionals": ["export", a, new, "--model", "0", "--out", str(tmp_path / "c")],
        "no_study": ["export", str(tmp_path / "missing"), "--model", "0", "--out", new],
    }[case]
    code, err = run_cli(argv, capsys)
    assert code == 2
    assert err.startswith("flimexplore: error: ") and match in err and len(err.splitlines()) == 1
    assert "Traceback" not in err


def test_the_entry_point_refuses_two_studies_without_a_traceback(tmp_path):
    a, b = fake_study(tmp_path / "a"), fake_study(tmp_path / "b")
    proc = subprocess.run(
        [sys.executable, "-m", "flimexplore", "export", a, "--model", "0", "--out", b],
        capture_output=True, text=True, timeout=120,
    )
    assert proc.returncode == 2 and proc.stdout == ""
    assert proc.stderr.startswith("flimexplore: error: both ") and len(proc.stderr.splitlines()) == 1
