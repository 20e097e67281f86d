import subprocess
import sys

import pytest

from ifrl.cli import NOT_AVAILABLE, SUBCOMMANDS, main


def test_help_lists_every_subcommand(capsys):
    with pytest.raises(SystemExit) as e:
        main(["--help"])
    assert e.value.code == 0
    out = capsys.readouterr().out
    for name in SUBCOMMANDS:
        assert name in out


@pytest.mark.parametrize("name", sorted(SUBCOMMANDS))
def test_every_subcommand_has_help(name, capsys):
    with pytest.raises(SystemExit) as e:
        main([name, "--help"])
    assert e.value.code == 0
    assert "usage: ifrl " + name in capsys.readouterr().out


def test_console_script_and_kernel_import_without_gpu():
    r = subprocess.run([sys.executable, "-m", "ifrl", "--help"], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0 and "verify" in r.stdout
    r = subprocess.run([sys.executable, "-c", "import ifrl.kernels, sys; print('kernels' in sys.modules)"],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    # our kernel package must never shadow Hugging Face's `kernels` package
    assert r.stdout.strip() == "False"


def test_unavailable_subcommand_says_so(capsys, monkeypatch):
    import ifrl.cli as cli

    monkeypatch.setitem(cli.SUBCOMMANDS, "future", ("ifrl.no_such_feature", "a feature not built"))
    assert main(["future"]) == NOT_AVAILABLE
    assert "not available yet" in capsys.readouterr().err
