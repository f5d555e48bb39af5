"""The runner runs a script as `python script.py args` would, and says how it ended.

No TensorFlow here: these are plain scripts.
"""

from __future__ import annotations

import json
import os
import sys
import textwrap
from pathlib import Path

import pytest

from gradscope import runner
from gradscope.errors import UsageError


def write(path: Path, source: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(source))
    return path


def run(path: Path | str, *args: str) -> runner.ScriptOutcome:
    return runner.run_script(runner.prepare(str(path)), list(args))


REPORT = """\
    import json, os, sys
    def f(x: int) -> None: ...
    print(json.dumps({
        "name": __name__,
        "argv": sys.argv,
        "path0": sys.path[0],
        "cwd": os.getcwd(),
        "file": __file__,
        "main_is_me": sys.modules["__main__"].__dict__ is globals(),
        "annotation": repr(f.__annotations__["x"]),
    }))
"""


def test_script_sees_what_python_would_give_it(tmp_path, monkeypatch, capsys):
    # given a script in a sub-folder, run by a relative path from another cwd
    script = write(tmp_path / "project" / "train.py", REPORT)
    monkeypatch.chdir(tmp_path)
    argv_before, path_before, main_before = sys.argv, list(sys.path), sys.modules["__main__"]

    # when
    outcome = run("project/train.py", "--seed", "3", "--", "x")

    # then it ran as __main__ with its own argv, its folder first on sys.path
    seen = json.loads(capsys.readouterr().out)
    assert outcome.kind == "returned"
    assert seen["name"] == "__main__"
    assert seen["argv"] == ["project/train.py", "--seed", "3", "--", "x"]
    assert seen["path0"] == str(script.parent.resolve())
    assert seen["cwd"] == str(tmp_path)
    assert seen["file"] == str(script.absolute())  # python 3.9+: absolute __file__
    assert seen["main_is_me"]
    # gradscope's own `from __future__ import annotations` did not leak into the script
    assert seen["annotation"] == "<class 'int'>"
    # and everything it changed is put back
    assert sys.argv is argv_before
    assert sys.path == path_before
    assert sys.modules["__main__"] is main_before


def test_symlinked_script_gets_its_real_folder_on_sys_path(tmp_path, capsys):
    # given a link to a script in another folder (python follows the link for sys.path[0])
    real = write(tmp_path / "real" / "train.py", REPORT)
    link = tmp_path / "link.py"
    link.symlink_to(real)

    run(link)

    seen = json.loads(capsys.readouterr().out)
    assert seen["path0"] == str(real.parent.resolve())
    assert seen["file"] == str(link)


def test_script_can_import_modules_beside_it(tmp_path, capsys):
    write(tmp_path / "helpers.py", "VALUE = 42\n")
    script = write(tmp_path / "train.py", "import helpers\nprint(helpers.VALUE)\n")

    outcome = run(script)

    assert outcome.kind == "returned"
    assert capsys.readouterr().out == "42\n"
    sys.modules.pop("helpers", None)


def test_classes_defined_in_the_script_pickle_through_main(tmp_path, capsys):
    # Keras serialisation and pickle look classes up in sys.modules["__main__"].
    script = write(
        tmp_path / "train.py",
        """\
        import pickle
        class Config:
            lr = 0.1
        print(type(pickle.loads(pickle.dumps(Config()))).__name__)
        """,
    )
    assert run(script).kind == "returned"
    assert capsys.readouterr().out == "Config\n"


@pytest.mark.parametrize(
    ("body", "code"),
    [("sys.exit()", None), ("sys.exit(0)", 0), ("sys.exit(7)", 7), ("sys.exit('bad config')", "bad config")],
)
def test_sys_exit_is_reported_with_its_code(tmp_path, body, code):
    script = write(tmp_path / "train.py", f"import sys\n{body}\n")

    outcome = run(script)

    assert outcome.kind == "exited"
    assert outcome.exit_code == code


@pytest.mark.parametrize(("code", "expected"), [(None, 0), (0, 0), (7, 7), (True, 1), ("bad", 1)])
def test_exit_codes_follow_python(code, expected):
    assert runner.exit_code_of(code) == expected


def test_users_exception_keeps_their_traceback_without_ours(tmp_path):
    # given a script whose helper raises
    script = write(
        tmp_path / "train.py",
        """\
        def load():
            raise ValueError("labels are missing")

        load()
        """,
    )

    outcome = run(script)

    # then the traceback starts in their file, as python's would
    assert outcome.kind == "raised"
    assert isinstance(outcome.error, ValueError)
    text = outcome.format_traceback()
    assert text.splitlines() == [
        "Traceback (most recent call last):",
        f'  File "{script}", line 4, in <module>',
        "    load()",
        f'  File "{script}", line 2, in load',
        '    raise ValueError("labels are missing")',
        "ValueError: labels are missing",
    ]
    assert "gradscope" + os.sep not in text


def test_a_traceback_entry_without_a_line_number_is_trimmed_like_any_other(tmp_path):
    # given a script whose error passed through an instruction with no line
    # number (as when a signal is raised between two lines of a library)
    script = write(
        tmp_path / "train.py",
        """\
        import types

        def load():
            raise ValueError("labels are missing")

        try:
            load()
        except ValueError as error:
            tb = error.__traceback__
            code = tb.tb_frame.f_code
            # an instruction the compiler gave no line (an except block's cleanup)
            index = next(i for i, p in enumerate(code.co_positions()) if p[0] is None)
            no_line = types.TracebackType(tb.tb_next, tb.tb_frame, 2 * index, -1)
            assert no_line.tb_lineno is None
            raise error.with_traceback(no_line)
        """,
    )

    outcome = run(script)

    # then the user still gets their own error, without our frames
    assert outcome.kind == "raised"
    assert isinstance(outcome.error, ValueError)
    text = outcome.format_traceback()
    assert text.splitlines()[-1] == "ValueError: labels are missing"
    assert f'File "{script}", line 4, in load' in text
    assert "gradscope" + os.sep not in text


def test_chained_exceptions_are_trimmed_too(tmp_path):
    script = write(
        tmp_path / "train.py",
        """\
        try:
            {}["lr"]
        except KeyError as error:
            raise RuntimeError("config incomplete") from error
        """,
    )

    text = run(script).format_traceback()

    assert "KeyError: 'lr'" in text
    assert "The above exception was the direct cause" in text
    assert "RuntimeError: config incomplete" in text
    assert "runner.py" not in text


def test_ctrl_c_in_the_script_is_reported_as_interrupted(tmp_path):
    script = write(tmp_path / "train.py", "raise KeyboardInterrupt\n")
    assert run(script).kind == "interrupted"


def test_probe_finished_ends_the_script_even_through_except_exception(tmp_path, capsys):
    # given a script that guards its fit with `except Exception`
    script = write(
        tmp_path / "train.py",
        """\
        from gradscope.intercept import ProbeFinished
        try:
            raise ProbeFinished()
        except Exception:
            print("swallowed")
        print("went on")
        """,
    )

    outcome = run(script)

    assert outcome.kind == "probe-finished"
    assert capsys.readouterr().out == ""


def test_missing_script_is_one_clear_usage_error(tmp_path):
    with pytest.raises(UsageError) as caught:
        runner.prepare(str(tmp_path / "nope.py"))
    assert str(caught.value) == f"cannot run '{tmp_path / 'nope.py'}': no such file"
    assert caught.value.exit_code == 2


def test_directory_is_one_clear_usage_error(tmp_path):
    with pytest.raises(UsageError, match="it is a directory, not a Python script"):
        runner.prepare(str(tmp_path))


def test_syntax_error_quotes_file_line_and_message(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    write(tmp_path / "train.py", "x = 1\nif x\n    pass\n")

    with pytest.raises(UsageError) as caught:
        runner.prepare("train.py")

    assert str(caught.value) == "cannot run 'train.py': syntax error at train.py:2: expected ':'"


def test_null_bytes_are_a_usage_error(tmp_path):
    script = tmp_path / "train.py"
    script.write_bytes(b"x = 1\x00\n")
    with pytest.raises(UsageError, match="cannot run"):
        runner.prepare(str(script))


def test_an_excepthook_the_script_installs_shows_its_error(tmp_path, monkeypatch, capsys):
    # given a script that formats its own errors (rich, IPython...), as python would honour
    monkeypatch.setattr(sys, "excepthook", sys.excepthook)  # put back whatever it sets
    script = write(
        tmp_path / "train.py",
        """\
        import sys
        sys.excepthook = lambda kind, error, tb: print("pretty:", error, file=sys.stderr)
        raise ValueError("bad shape")
        """,
    )

    run(script).print_traceback()

    assert capsys.readouterr().err == "pretty: bad shape\n"
